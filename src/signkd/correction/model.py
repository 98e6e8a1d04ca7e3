"""A seq2seq gloss corrector with a likelihood gate that keeps it from making outputs worse.

The corrector wraps any Hugging Face encoder-decoder (`AutoModelForSeq2SeqLM`) and its
tokenizer. With no pretrained checkpoint configured it builds a small BART over a word-level
gloss tokenizer, entirely offline; with a hub id or a local directory it loads that checkpoint
(T5, mT5, BART, ...) so the same fine-tuning code runs on a real pretrained model.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    GenerationConfig,
    PreTrainedTokenizerFast,
)

from signkd.correction.constrain import VocabularyConstraint
from signkd.io import atomic_dir, write_json
from signkd.scoring import official_wer

# BART's conventional ids: <s>=0, <pad>=1, </s>=2, <unk>=3.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
# Margins tried by calibrate_margin; inf means "never accept a correction".
MARGIN_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, math.inf)
CONFIG_FILE = "corrector.json"
FORMAT_VERSION = 1


def _wer(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], clean: str = "none") -> float:
    """Corpus WER in percent with the project's official scorer, so the gate is calibrated on
    exactly the number the pipeline reports."""
    return official_wer(refs, hyps, clean=clean).wer


def build_gloss_tokenizer(vocab: Sequence[str] | None, max_length: int = 128) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: one id per gloss, so glosses are never split into sub-words.

    Glosses are split on whitespace only (not on punctuation), since gloss names such as
    `loc-NORD`, `A+B` or `__ON__` are single tokens.
    """
    glosses = _check_vocab(vocab)
    ids = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *glosses])}
    core = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length,
        clean_up_tokenization_spaces=False,
    )


def _check_vocab(vocab: Sequence[str] | None) -> list[str]:
    if vocab is None or len(vocab) == 0:
        raise ValueError("vocab is empty: the default corrector needs the gloss vocabulary")
    glosses = list(dict.fromkeys(vocab))
    for gloss in glosses:
        if not isinstance(gloss, str) or not gloss or gloss != gloss.strip() or len(gloss.split()) != 1:
            raise ValueError(f"vocab entry {gloss!r} is not a single whitespace-free gloss")
        if gloss in SPECIAL_TOKENS:
            raise ValueError(f"vocab entry {gloss!r} collides with a special token")
    return glosses


def build_small_bart(
    vocab_size: int, *, d_model: int, layers: int, heads: int, ffn_dim: int, dropout: float, max_length: int
) -> BartForConditionalGeneration:
    """A randomly initialised BART of the given size, using BART's special-token ids."""
    if d_model % heads != 0:
        raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
    config = BartConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim,
        decoder_ffn_dim=ffn_dim,
        dropout=dropout,
        max_position_embeddings=max_length,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
    )
    model = BartForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=2, bos_token_id=0, eos_token_id=2, pad_token_id=1
    )
    return model


class GlossCorrector:
    """Maps a recognised gloss sequence to a corrected one, and declines when unsure.

    The gate: for hypothesis h the model proposes a correction c (beam search, conditioned on
    h). Both are then scored by the same model as targets for source h, as the mean per-token
    log-likelihood (length-normalised, so a shorter or longer sequence is not favoured for its
    length). c replaces h only if score(c) - score(h) > margin. A small margin lets the model
    act on every confident edit; a large one keeps only edits it strongly prefers; inf never
    edits. `calibrate_margin` picks the margin that gives the lowest WER on held-out
    (hypothesis, reference) pairs. "Never accept" is always in the grid and wins ties, so on the
    calibration set the corrected WER is never above the uncorrected WER. A hypothesis the
    tokenizer cannot represent exactly (an unknown gloss, too long) is always left unchanged.
    """

    def __init__(self, model, tokenizer, *, margin: float = 0.0, max_length: int = 128,
                 vocab: Sequence[str] | None = None):
        """Wrap a loaded seq2seq model; until calibrated, margin 0 accepts any correction the
        model scores above the original. With `vocab`, generation may only output its words
        (`VocabularyConstraint`). Most callers use `build` or `load` instead."""
        if max_length <= 0:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.margin = float(margin)
        self.max_length = int(max_length)
        self.vocab = list(vocab) if vocab else None
        self.constraint = VocabularyConstraint(tokenizer, self.vocab) if self.vocab else None
        self.calibration: dict = {}

    @classmethod
    def build(
        cls,
        vocab: Sequence[str] | None = None,
        *,
        pretrained: str = "",
        d_model: int = 96,
        layers: int = 2,
        heads: int = 4,
        ffn_dim: int = 256,
        dropout: float = 0.1,
        max_length: int = 128,
        seed: int = 0,
    ) -> GlossCorrector:
        """A fresh corrector: a small BART over `vocab`, or the checkpoint named by `pretrained`.

        `pretrained` is a local directory (loaded with local_files_only, never touching the
        network) or a hub id (downloaded by transformers unless HF_HUB_OFFLINE is set). With a
        checkpoint, `vocab` is optional and only checked: glosses its tokenizer cannot
        reproduce exactly are reported in a warning, since hypotheses containing them are
        never corrected.
        """
        for name, value in (("d_model", d_model), ("layers", layers), ("heads", heads), ("ffn_dim", ffn_dim),
                            ("max_length", max_length)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if pretrained:
            corrector = cls._from_checkpoint(pretrained, max_length=max_length, vocab=vocab)
            lost = [g for g in (vocab or []) if not corrector._representable([g])]
            if lost:
                warnings.warn(
                    f"{len(lost)} of {len(cast(Sequence[str], vocab))} glosses do not survive the tokenizer of {pretrained!r} "
                    f"(e.g. {lost[:5]}); hypotheses containing them are left uncorrected",
                    stacklevel=2,
                )
            return corrector
        tokenizer = build_gloss_tokenizer(vocab, max_length=max_length)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_small_bart(
                len(tokenizer), d_model=d_model, layers=layers, heads=heads,
                ffn_dim=ffn_dim, dropout=dropout, max_length=max_length,
            )
        return cls(model, tokenizer, max_length=max_length, vocab=_check_vocab(vocab))

    @classmethod
    def _from_checkpoint(cls, source: str, *, max_length: int, margin: float = 0.0,
                         vocab: Sequence[str] | None = None) -> GlossCorrector:
        local = Path(source).expanduser().is_dir()
        if not local and source.startswith(("/", "./", "../", "~")):
            raise FileNotFoundError(f"pretrained model directory {source!r} does not exist")
        source = str(Path(source).expanduser()) if local else source
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModelForSeq2SeqLM.from_pretrained(source, local_files_only=local)
        except (OSError, ValueError) as err:
            where = "local directory" if local else "hub id (not a local directory; is the hub reachable?)"
            raise OSError(f"cannot load seq2seq model from {where} {source!r}: {err}") from err
        return cls(model, tokenizer, margin=margin, max_length=max_length, vocab=vocab)

    def to(self, device: str | torch.device) -> GlossCorrector:
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def model_size_mb(self) -> float:
        """Size of the weights in MiB (2**20 bytes); tied weights counted once."""
        tensors = {id(t): t for t in [*self.model.parameters(), *self.model.buffers()]}
        return sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20

    # -- batching ---------------------------------------------------------------------------

    def encode_pairs(
        self, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]] | None = None
    ) -> dict[str, torch.Tensor]:
        """Padded model inputs; with targets, `labels` too, padding masked out as -100."""
        kwargs = {"padding": True, "truncation": True, "max_length": self.max_length, "return_tensors": "pt"}
        src_text = [" ".join(s) for s in sources]
        if targets is None:
            enc = self.tokenizer(src_text, **kwargs)
        else:
            enc = self.tokenizer(src_text, text_target=[" ".join(t) for t in targets], **kwargs)
            labels = enc["labels"]
            labels[labels == self.tokenizer.pad_token_id] = -100
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "labels")}

    def _representable(self, glosses: Sequence[str]) -> bool:
        ids = self.tokenizer(" ".join(glosses), truncation=True, max_length=self.max_length)["input_ids"]
        return self.tokenizer.decode(ids, skip_special_tokens=True).split() == list(glosses)

    @torch.no_grad()
    def generate(self, hyps: Sequence[Sequence[str]], *, num_beams: int = 4, batch_size: int = 64,
                 length_ratio: float = 1.5) -> list[list[str]]:
        """The model's raw proposals, without the gate: free-running beam search (the decoder
        sees only its own outputs, never a reference), restricted to `vocab` when set; at most
        `length_ratio` times the input length plus 4 tokens."""
        _check_positive(num_beams=num_beams, batch_size=batch_size)
        self.model.eval()
        out: list[list[str]] = []
        for start in range(0, len(hyps), batch_size):
            enc = self.encode_pairs(hyps[start : start + batch_size])
            max_new = min(self.max_length, int(length_ratio * enc["input_ids"].shape[1]) + 4)
            ids = self.model.generate(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                num_beams=num_beams, do_sample=False, max_new_tokens=max_new,
                prefix_allowed_tokens_fn=self.constraint,
            )
            out.extend(text.split() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    @torch.no_grad()
    def sequence_scores(
        self, sources: Sequence[Sequence[str]], targets: Sequence[Sequence[str]], *, batch_size: int = 64
    ) -> list[float]:
        """Mean per-token log-likelihood of each target given its source (end token included)."""
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        self.model.eval()
        scores: list[float] = []
        for start in range(0, len(sources), batch_size):
            enc = self.encode_pairs(sources[start : start + batch_size], targets[start : start + batch_size])
            labels = enc["labels"]
            logits = self.model(**enc).logits.float()
            token_lp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            mask = (labels != -100).float()
            scores.extend(((token_lp * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist())
        return scores

    def propose(
        self, hyps: Sequence[Sequence[str]], *, num_beams: int = 4, batch_size: int = 64
    ) -> tuple[list[list[str]], list[float]]:
        """Candidate corrections and their gain over the original (score(c) - score(h)).

        Unrepresentable or unchanged hypotheses get gain -inf, so no margin accepts them.
        """
        hyps = [list(h) for h in hyps]
        candidates = self.generate(hyps, num_beams=num_beams, batch_size=batch_size)
        gains = [-math.inf] * len(hyps)
        todo = [i for i, (h, c) in enumerate(zip(hyps, candidates)) if c != h and self._representable(h)]
        if todo:
            orig = self.sequence_scores([hyps[i] for i in todo], [hyps[i] for i in todo], batch_size=batch_size)
            cand = self.sequence_scores([hyps[i] for i in todo], [candidates[i] for i in todo], batch_size=batch_size)
            for i, o, c in zip(todo, orig, cand):
                gains[i] = c - o
        return candidates, gains

    def correct(
        self, hyps: Sequence[Sequence[str]], *, num_beams: int = 4, batch_size: int = 64, gate: bool = True
    ) -> list[list[str]]:
        """Corrected gloss sequences; with `gate`, a correction is kept only if it beats the margin."""
        hyps = cast("list[list[str]]", [list(h) for h in hyps])  # what mypy does not infer
        if not hyps:
            return []
        if not gate:
            return [c if self._representable(h) else h
                    for h, c in zip(hyps, self.generate(hyps, num_beams=num_beams, batch_size=batch_size))]
        candidates, gains = self.propose(hyps, num_beams=num_beams, batch_size=batch_size)
        return _apply_gate(hyps, candidates, gains, self.margin)

    def calibrate_margin(
        self,
        hyps: Sequence[Sequence[str]],
        refs: Sequence[Sequence[str]],
        *,
        grid: Sequence[float] = MARGIN_GRID,
        num_beams: int = 4,
        batch_size: int = 64,
        clean: str = "none",
    ) -> float:
        """Set and return the margin from `grid` with the lowest WER on held-out pairs
        (scored with the dataset's official clean-up `clean`).

        Ties go to the larger (more conservative) margin; inf ("never accept") is always
        tried, so the chosen margin never raises WER on these pairs. The per-margin WERs are
        kept in `self.calibration` for logging.
        """
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
        if not hyps:
            raise ValueError("calibration needs at least one (hypothesis, reference) pair")
        if any(m < 0 or math.isnan(m) for m in grid):
            raise ValueError(f"margins must be >= 0, got {list(grid)}")
        hyps = cast("list[list[str]]", [list(h) for h in hyps])  # what mypy does not infer
        refs = [list(r) for r in refs]
        candidates, gains = self.propose(hyps, num_beams=num_beams, batch_size=batch_size)
        margins = sorted(set(grid) | {math.inf}, reverse=True)
        wers = [_wer(refs, _apply_gate(hyps, candidates, gains, m), clean) for m in margins]
        best = min(range(len(margins)), key=lambda i: (wers[i], i))  # equal WER: lower index = larger margin
        self.margin = margins[best]
        self.calibration = {
            "margins": [_json_margin(m) for m in margins],
            "wer": wers,
            "wer_before": _wer(refs, hyps, clean),
            "wer_after": wers[best],
            "margin": _json_margin(self.margin),
            "accepted": sum(g > self.margin for g in gains),
            "num_pairs": len(hyps),
        }
        return self.margin

    # -- persistence ------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Weights (safetensors), tokenizer and margin into `directory`, replaced atomically."""
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            write_json(tmp / CONFIG_FILE, {
                "format_version": FORMAT_VERSION,
                "margin": _json_margin(self.margin),
                "max_length": self.max_length,
                "calibration": self.calibration,
                "vocab": self.vocab,
            })
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> GlossCorrector:
        """A corrector saved by `save`; reads only local files, never pickle."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} not found: {directory} is not a saved GlossCorrector")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{config_path}: format_version {config.get('format_version')!r}, expected {FORMAT_VERSION}")
        margin = math.inf if config["margin"] is None else float(config["margin"])
        corrector = cls._from_checkpoint(str(directory), max_length=int(config["max_length"]), margin=margin,
                                         vocab=config.get("vocab"))
        corrector.calibration = config.get("calibration", {})
        return corrector


def _apply_gate(hyps: list[list[str]], candidates: list[list[str]], gains: list[float], margin: float) -> list[list[str]]:
    return [c if g > margin else h for h, c, g in zip(hyps, candidates, gains)]


def _json_margin(margin: float) -> float | None:
    """JSON has no infinity; None stands for "never accept"."""
    return None if math.isinf(margin) else margin


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
