"""Which words of a query the retrieval model's text encoder has likely never seen.

A text encoder scores any string, also words it never met in training: their tokens then carry
no meaning, and the score of the phrase follows its other pieces (the demo's tiny encoder reads
"a photo of a place" as p·l·ace, near "face"). Such a score must not be presented as a finding.
The training captions are not part of a bundle, so two things stand in for them: the retrieval
model's tokenizer (a word it keeps as one token is in its vocabulary; the demo's tokenizer is
trained on the demo's training captions until no merge is left, so there one token means "in the
training captions") and the bundle's reference captions. A word is unknown when it is neither one
token nor a word of any reference caption.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

Pieces = Callable[[str], Sequence[str]]


def words(text: str) -> list[str]:
    """The words of a text (letters and digits, inner apostrophes kept), in order."""
    return WORD.findall(text)


def tokenizer_pieces(tokenizer) -> Pieces:
    """A word → the readable pieces a Hugging Face tokenizer splits it into, as it occurs inside a sentence."""
    def pieces(word: str) -> list[str]:
        readable = (tokenizer.convert_tokens_to_string([t]).strip() for t in tokenizer.tokenize(" " + word))
        return [p for p in readable if p]  # a bare word-boundary token (byte-level BPE's "Ġ") is no piece of the word
    return pieces


@dataclass
class Vocabulary:
    """The words a retrieval model's text encoder knows: one token of its tokenizer, or a word of the references."""

    pieces: Pieces
    caption_words: frozenset[str]
    n_captions: int = 0

    @classmethod
    def from_captions(cls, pieces: Pieces, captions: Iterable[Sequence[str]]) -> Vocabulary:
        captions = [c for per_trial in captions for c in per_trial]
        return cls(pieces, frozenset(w for c in captions for w in words(c)), len(captions))

    def unknown(self, texts: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Each unknown word of ``texts`` (first occurrence first) → the tokenizer's pieces of it."""
        out: dict[str, tuple[str, ...]] = {}
        for text in texts:
            for word in words(text):
                if word in out or word in self.caption_words:
                    continue
                split = tuple(self.pieces(word))
                if len(split) > 1:
                    out[word] = split
        return out

    def warning(self, unknown: dict[str, tuple[str, ...]]) -> str | None:
        """One sentence saying which words the text encoder likely has no meaning for, or None."""
        if not unknown:
            return None
        listed = ", ".join(f"{w!r} ({'·'.join(p)})" for w, p in unknown.items())
        one = len(unknown) == 1
        return (f"{listed}: not one token of the text encoder and in none of the bundle's {self.n_captions} "
                f"reference captions; the retrieval model has likely never seen {'it' if one else 'them'}, so the "
                "score reflects the rest of the phrase")
