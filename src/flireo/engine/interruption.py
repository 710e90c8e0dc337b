"""Barge-in policy: does caller speech over the agent mean "stop talking"?

Pure decisions (the cascade pipeline applies them):

- while the caller is still talking, :func:`interrupts_now` — enough voiced
  speech (``min_speech_ms``) or, with a streaming STT, enough recognised words
  (``min_words``) that are not backchannels;
- before either, :func:`holds_now` — ``hold_ms`` of voice holds the agent's
  speech (nothing dropped) until the utterance is judged;
- when a shorter utterance is over, :func:`interrupts_after` — its final
  transcript has at least ``min_final_words`` real words ("Stop.", "Sorry?"),
  so "mm-hmm", "okay", "yeah" and coughs (no words at all) never interrupt.
"""

from __future__ import annotations

import re

from flireo.engine.config import BargeIn

#: acknowledgements a listener makes without asking for the turn (English, Dutch)
BACKCHANNELS = frozenset(
    {
        "mm", "mmm", "hm", "hmm", "mhm", "mm-hmm", "mm-hm", "hmm-mm", "uh-huh", "uh", "um",
        "ah", "oh", "yeah", "yes", "yep", "yup", "ok", "okay", "right", "sure", "alright",
        "cool", "i see", "got it", "ja", "jawel", "oké", "precies", "klopt", "hmhm", "aha",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*|\d+", re.UNICODE)
_NON_SPEECH = re.compile(r"[\[(][^\])]*[\])]")  # "[coughs]", "(laughing)" from STT


def spoken_words(text: str) -> list[str]:
    """Lower-case words, without STT sound annotations such as "(coughs)"."""
    return _WORD.findall(_NON_SPEECH.sub(" ", text).lower())


def content_words(text: str) -> list[str]:
    """The words that are not backchannels ("Mm-hmm, okay, wait" → ["wait"])."""
    words = spoken_words(text)
    out: list[str] = []
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else ""
        if pair in BACKCHANNELS:
            i += 2
            continue
        if words[i] not in BACKCHANNELS:
            out.append(words[i])
        i += 1
    return out


def is_backchannel(text: str) -> bool:
    """True when ``text`` says nothing but acknowledgements (or nothing at all)."""
    return not content_words(text)


def interrupts_now(policy: BargeIn, *, voiced_ms: int, partial: str | None) -> bool:
    """Caller still talking over the agent: interrupt yet?"""
    if not policy.enabled:
        return False
    if policy.min_speech_ms > 0 and voiced_ms >= policy.min_speech_ms:
        return True
    return (
        partial is not None
        and policy.min_words > 0
        and len(content_words(partial)) >= policy.min_words
    )


def holds_now(policy: BargeIn, *, voiced_ms: int) -> bool:
    """Caller speech over the agent, not (yet) an interruption: hold the agent's speech?"""
    return policy.enabled and policy.hold_ms > 0 and voiced_ms >= policy.hold_ms


def interrupts_after(policy: BargeIn, final_text: str) -> bool:
    """A short utterance over the agent is over: was it a real turn after all?"""
    if not policy.enabled:
        return False
    return len(content_words(final_text)) >= max(1, policy.min_final_words)
