"""Text correction of recognised gloss sequences (KD-MSLRT style).

Typical use: build -> pretrain (synthetic noise) -> finetune (real errors) -> calibrate_margin
(held-out pairs) -> correct -> save.
"""

from signkd.correction.model import MARGIN_GRID, GlossCorrector, build_gloss_tokenizer
from signkd.correction.noise import DEFAULT_NOISE, corrupt, make_denoising_pairs
from signkd.correction.train import finetune, pretrain

__all__ = [
    "DEFAULT_NOISE",
    "MARGIN_GRID",
    "GlossCorrector",
    "build_gloss_tokenizer",
    "corrupt",
    "finetune",
    "make_denoising_pairs",
    "pretrain",
]
