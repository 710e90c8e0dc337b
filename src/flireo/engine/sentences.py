"""Cut streamed LLM text into sentences, so each can go to TTS as soon as it is complete.

Rules (pure; no I/O):

- A sentence ends at ``.``, ``!``, ``?`` or ``…`` (closing quotes/brackets
  included) once whitespace follows: "3.5" and "e.g.x" never split, and a
  terminator at the very end of the buffer waits for the next token.
- Not an end: known abbreviations ("Dr.", "e.g.", "approx."), single-letter
  initials ("J. Smith"), an ellipsis followed by a lower-case word ("Well... I
  mean" splits, "so... maybe" does not), and a terminator after a bare number
  followed by a lower-case word ("step 3. then").
- A newline ends a sentence (lists, paragraphs).
- A clause longer than ``max_clause_chars`` is cut at its last ``,``/``;``/``:``
  followed by whitespace (past ``min_clause_chars``), so a long sentence does not
  hold back the first audio.
- :meth:`SentenceSplitter.flush` returns whatever is left at the end.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "eg",
        "ie", "e.g", "i.e", "approx", "appt", "apt", "dept", "est", "fig", "inc", "ltd",
        "co", "corp", "no", "nr", "tel", "min", "max", "jan", "feb", "mar", "apr", "jun",
        "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri",
        "sat", "sun", "ca", "bijv", "dhr", "mevr", "mw", "blz", "evt", "o.a", "m.b.t",
    }
)  # fmt: skip

_TERMINATORS = ".!?…"
_CLOSERS = "\"')]}»”’"
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*|\d+)$")


def _is_sentence_end(text: str, end: int) -> bool:
    """Does the terminator run ending at ``end`` (exclusive) close a sentence?

    ``text[end]`` is the whitespace after it; the character after that (if any)
    helps with ellipses and numbers.
    """
    start = end
    while start > 0 and text[start - 1] in _CLOSERS:
        start -= 1
    run_end = start
    while start > 0 and text[start - 1] in _TERMINATORS:
        start -= 1
    run = text[start:run_end]
    if not run:
        return False
    following = text[end:].lstrip()
    next_char = following[:1]
    if run.endswith(("...", "…")) or run == "..":
        return not next_char.islower()
    if run != ".":
        return True  # "!", "?", "?!", "!!"
    match = _WORD_BEFORE.search(text, 0, start)
    if match is None:
        return True
    word = match.group(1)
    if word.isdigit():
        return not next_char.islower()
    bare = word.rstrip(".").lower()
    if len(bare) == 1 and bare.isalpha():
        return False  # an initial: "J. Smith", "a. b."
    return bare not in ABBREVIATIONS


class SentenceSplitter:
    """Feed text deltas with :meth:`push`; complete sentences come out in order."""

    __slots__ = ("_buffer", "_scanned", "max_clause_chars", "min_clause_chars")

    def __init__(self, *, max_clause_chars: int = 120, min_clause_chars: int = 30) -> None:
        if min_clause_chars >= max_clause_chars:
            raise ValueError("min_clause_chars must be below max_clause_chars")
        self.max_clause_chars = max_clause_chars
        self.min_clause_chars = min_clause_chars
        self._buffer = ""
        self._scanned = 0  # positions before this were checked for sentence ends

    def push(self, delta: str) -> list[str]:
        """Add a delta; return the sentences it completed (stripped, non-empty)."""
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            sentence = self._buffer[:cut].strip()
            self._buffer = self._buffer[cut:].lstrip()
            self._scanned = 0
            if sentence:
                out.append(sentence)
        return out

    def flush(self) -> str | None:
        """The rest of the text (end of the stream); None when nothing is left."""
        rest = self._buffer.strip()
        self._buffer = ""
        self._scanned = 0
        return rest or None

    def _next_cut(self) -> int | None:
        text = self._buffer
        i = max(self._scanned, 1)
        length = len(text)
        while i < length:
            ch = text[i]
            if ch == "\n" and text[:i].strip():
                return i + 1
            if ch.isspace() and (text[i - 1] in _TERMINATORS or text[i - 1] in _CLOSERS):
                # a terminator followed by whitespace: decide once the next word starts,
                # unless the decision does not need it
                rest = text[i:].lstrip()
                if not rest and text[i - 1] in ".…" and self._needs_lookahead(text, i):
                    self._scanned = i
                    return None
                if _is_sentence_end(text, i):
                    return i
            i += 1
        self._scanned = max(length - 1, 1)
        if length > self.max_clause_chars:
            return self._clause_cut(text)
        return None

    @staticmethod
    def _needs_lookahead(text: str, end: int) -> bool:
        """A "." after a number or an ellipsis: the next word's case decides."""
        j = end
        while j > 0 and text[j - 1] in _CLOSERS:
            j -= 1
        if text[max(0, j - 3) : j] == "..." or text[j - 1 : j] == "…":
            return True
        before = text[:j].rstrip(".")
        return bool(before) and before[-1].isdigit()

    def _clause_cut(self, text: str) -> int | None:
        best = None
        for match in _CLAUSE_BREAK.finditer(text, self.min_clause_chars):
            best = match.end()
        return best


def split_sentences(text: str, **options: int) -> list[str]:
    """All sentences of a whole text (the streaming splitter run over it at once)."""
    splitter = SentenceSplitter(**options)
    out = splitter.push(text)
    rest = splitter.flush()
    if rest:
        out.append(rest)
    return out
