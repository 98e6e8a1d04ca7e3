"""Text correction of recognised gloss sequences (KD-MSLRT style), and a sentence out.

Typical use: build -> pretrain (synthetic noise on leak-guarded sentences) -> finetune (errors
sampled from the student's posteriors) -> calibrate_margin (dev) -> correct -> save; then a
GlossTranslator turns glosses into a sentence. `pipeline.run` does all of it for the stage.
"""

from signkd.correction.data import LeakGuard
from signkd.correction.model import MARGIN_GRID, GlossCorrector, build_gloss_tokenizer
from signkd.correction.noise import DEFAULT_NOISE, corrupt, make_denoising_pairs
from signkd.correction.train import finetune, pretrain
from signkd.correction.translate import GlossTranslator

__all__ = [
    "DEFAULT_NOISE",
    "MARGIN_GRID",
    "GlossCorrector",
    "GlossTranslator",
    "LeakGuard",
    "build_gloss_tokenizer",
    "corrupt",
    "finetune",
    "make_denoising_pairs",
    "pretrain",
]
