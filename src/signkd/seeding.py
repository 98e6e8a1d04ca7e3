"""One seed for every random number generator a stage uses (Python, NumPy, PyTorch), and the
thread count torch computes with."""

import os
import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


THREADS_ENV = "SIGNKD_TORCH_THREADS"


def set_torch_threads() -> int:
    """One intra-op thread unless SIGNKD_TORCH_THREADS says otherwise: these models are small,
    and on a shared 2-core machine torch's default (all cores) was measured 8-40x slower than
    one thread once anything else ran beside it. Set it higher on a machine of your own."""
    n = int(os.environ.get(THREADS_ENV, "1"))
    torch.set_num_threads(max(1, n))
    return n
