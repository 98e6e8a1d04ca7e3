"""Free-running generation restricted to the gloss vocabulary, for checkpoints with sub-word tokenizers.

The tests build tiny T5 / BART checkpoints with their own sub-word tokenizers (sentencepiece-style
Metaspace BPE, GPT-2-style byte-level BPE), save them with `save_pretrained` and load them the
way `correct.pretrained` does (Auto classes, local directory, no hub).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from signkd.correction import GlossCorrector
from signkd.correction.constrain import VocabularyConstraint

# shared prefixes (NORD/NORDWEST, REGEN/REGENBOGEN) exercise words that end inside another word
VOCAB = ["MORGEN", "NORD", "NORDWEST", "REGEN", "REGENBOGEN", "SONNE", "STARK", "WIND", "OST", "SUED"]
TEXT = [" ".join(VOCAB[i:] + VOCAB[:i]) for i in range(len(VOCAB))] + ["MORGENROT ABENDSTERN NEBELWAND"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _sentencepiece_like() -> PreTrainedTokenizerFast:
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=40, special_tokens=["<pad>", "</s>", "<unk>"]))
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def _byte_level() -> PreTrainedTokenizerFast:
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=275, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def _t5(tmp_path, tokenizer):
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                      num_heads=4, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


def _bart(tmp_path, tokenizer):
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2, forced_eos_token_id=2)
    torch.manual_seed(1)
    BartForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


HYPS = [["MORGEN", "NORD", "REGEN"], ["SONNE"], ["OST", "WIND", "STARK", "SUED"], ["NORDWEST", "REGENBOGEN"]] * 3


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: _t5(p, _sentencepiece_like()), id="t5-metaspace-bpe"),
    pytest.param(lambda p: _bart(p, _byte_level()), id="bart-byte-level-bpe"),
])
def test_generation_from_a_subword_checkpoint_stays_in_the_vocabulary(tmp_path, make):
    source = make(tmp_path / "ckpt")
    corrector = GlossCorrector.build(VOCAB, pretrained=source)
    assert len(corrector.tokenizer(" ".join(VOCAB), add_special_tokens=False)["input_ids"]) > len(VOCAB)  # sub-words
    out = corrector.generate(HYPS, num_beams=3)
    assert all(g in VOCAB for seq in out for g in seq), out
    # the same untrained model without the restriction spells words the vocabulary lacks
    corrector.constraint = None
    free = corrector.generate(HYPS, num_beams=3)
    assert any(g not in VOCAB for seq in free for g in seq), free

    saved = GlossCorrector.build(VOCAB, pretrained=source)
    loaded = GlossCorrector.load(saved.save(tmp_path / "saved"))  # the vocabulary travels with the model
    assert loaded.vocab == VOCAB and loaded.generate(HYPS, num_beams=3) == out


def test_the_trie_allows_exactly_word_continuations_and_ends():
    tok = _byte_level()
    c = VocabularyConstraint(tok, VOCAB)
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    nord = ids("NORD")
    assert set(c.allowed([])) >= {nord[0], tok.eos_token_id, tok.bos_token_id}
    assert tok.bos_token_id not in c.allowed([tok.bos_token_id])  # <s> only once, at the start
    after_nord = set(c.allowed([tok.bos_token_id, *nord]))
    assert tok.eos_token_id in after_nord  # NORD is a word ...
    assert ids("NORDWEST")[len(nord)] in after_nord  # ... and the start of NORDWEST
    assert ids("A REGEN")[1] in after_nord  # a following word, spelled with its leading space
    assert ids("REGEN")[0] not in after_nord  # but not the sentence-initial spelling
    partial = ids("REGENBOGEN")[: len(ids("REGEN")) + 1]
    if partial != ids("REGEN"):
        assert tok.eos_token_id not in c.allowed(partial)  # inside REGENBOGEN: no end yet
    assert c.allowed([*nord, tok.convert_tokens_to_ids("<unk>")]) == [tok.pad_token_id]  # a padded finished beam


def test_words_the_tokenizer_cannot_spell_are_never_generated():
    tok = _sentencepiece_like()
    c = VocabularyConstraint(tok, [*VOCAB, "ÜBER"])  # Ü is not in this tokenizer's alphabet: <unk>
    first = {tok.convert_ids_to_tokens(t) for t in c.allowed([])}
    assert not any("Ü" in t for t in first) and "<unk>" not in first
    with pytest.raises(ValueError, match="no word"):
        VocabularyConstraint(tok, ["ÜBER"])
