"""Generation restricted to a vocabulary: any tokenizer, only whole words from a fixed list.

A pretrained checkpoint (T5, mT5, BART) splits glosses into sub-words and can spell words the
recogniser's vocabulary does not have; free-running generation would then output glosses no
scorer or downstream step knows. `VocabularyConstraint` is a `prefix_allowed_tokens_fn` for
`generate`: it walks a token trie of the allowed words, so every step may only continue the
current word, start a new allowed word after a complete one, or end the sequence there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_END = -1  # trie key marking "a complete word ends here"


def _insert(trie: dict, ids: Sequence[int]) -> None:
    node = trie
    for i in ids:
        node = node.setdefault(int(i), {})
    node[_END] = {}


class VocabularyConstraint:
    """Allowed next tokens so that the decoded output is a sequence of words from `words`.

    Words are tokenized twice: alone (the first word of a sentence) and after another word and a
    space (byte-level BPE marks a word start with a space symbol, so the two spellings differ).
    The decoder-start token and a leading `<s>` (BART) are skipped. Words the
    tokenizer cannot reproduce exactly (unknown characters) are left out, since generating them
    would yield `<unk>`.
    """

    def __init__(self, tokenizer, words: Sequence[str]):
        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise ValueError("the tokenizer has no end-of-sequence token; constrained generation needs one")
        self.bos = tokenizer.bos_token_id
        self.fallback = [tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos]
        self.first: dict = {}
        self.follow: dict = {}
        anchor = None
        for word in dict.fromkeys(words):
            alone = tokenizer(word, add_special_tokens=False)["input_ids"]
            if not alone or tokenizer.decode(alone, skip_special_tokens=True).strip() != word:
                continue
            anchor = anchor or alone
            anchor_text = tokenizer.decode(anchor, skip_special_tokens=True).strip()
            pair = tokenizer(f"{anchor_text} {word}", add_special_tokens=False)["input_ids"]
            if pair[: len(anchor)] != anchor or len(pair) == len(anchor):
                raise ValueError(f"the tokenizer does not split on whitespace ({anchor_text!r} changes before "
                                 f"{word!r}); constrained generation needs word-separable tokens")
            _insert(self.first, alone)
            _insert(self.follow, pair[len(anchor):])
        if not self.first:
            raise ValueError("no word of the vocabulary survives the tokenizer; nothing can be generated")

    def allowed(self, generated: list[int]) -> list[int]:
        """Allowed next tokens after `generated` (the decoder output so far, prompt excluded)."""
        skip = 1 if self.bos is not None and generated[:1] == [self.bos] else 0
        node, started = self.first, False
        for t in generated[skip:]:
            if t in node:
                node, started = node[t], True
            elif started and _END in node and t in self.follow:
                node = self.follow[t]
            else:
                return self.fallback  # a finished beam being padded
        if not started:  # any first word, or an empty output; BART-style models may open with <s>
            return [*self.first, self.eos] + ([self.bos] if self.bos is not None and not skip else [])
        allowed = [t for t in node if t != _END]
        if _END in node:
            allowed += [*self.follow, self.eos]
        return allowed

    def __call__(self, batch_id: int, input_ids: torch.Tensor) -> list[int]:
        # an encoder-decoder's decoder input opens with exactly one decoder-start token
        return self.allowed(input_ids.tolist()[1:])
