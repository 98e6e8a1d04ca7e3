"""One seed for every random number generator a stage uses (Python, NumPy, PyTorch)."""

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
