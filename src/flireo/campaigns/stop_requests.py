"""Does the caller ask never to be called again? (English and Dutch)

Deliberately narrow: "don't call me again" and "bel me niet meer" count, "don't
call me before ten" and "bel me morgen terug" do not. A match should end the
call politely and put the number on the do-not-call list.
"""

from __future__ import annotations

import re

_ME = r"(me|us|this number|my number|here)"
_EN = [
    rf"\bstop (calling|ringing|phoning) {_ME}\b",
    r"\bstop calling\b(?! (?:back|later|tomorrow))",
    rf"\b(do not|never|dont) (ever )?(call|ring|phone) {_ME} (again|anymore|any more|ever)\b",
    rf"\bnever (call|ring|phone) {_ME}\b",
    rf"\b(take|remove|delete|get|strike|cross) {_ME} (off|from|out of) "
    r"(your|the|this) (\w+ )?(list|database|records|system|file)\b",
    rf"\b(put|add|place) {_ME} (on|to) (your|the) (\w+ )?do not call list\b",
    r"\bdo not call (list|register|registry)\b",
    r"\b(i|we) do not want (any more|anymore|more|your|these) (\w+ )?calls\b",
    r"\b(i|we) do not want (to be called|you to call|to be contacted|you calling)\b",
    r"\bno more (phone )?calls\b",
    r"\blose my number\b",
    r"\bunsubscribe me\b",
]
_MIJ = r"(me|mij|ons)"
_NL = [
    rf"\bbel {_MIJ} (alsjeblieft |alstublieft |a\.u\.b\. )?"
    r"(niet meer|nooit meer|nooit weer|nooit)\b",
    r"\b(niet|nooit) meer (te )?(bellen|opbellen|terugbellen)\b",
    rf"\b(stop|stoppen|ophouden) met ({_MIJ} )?(te )?bellen\b",
    rf"\b(haal|verwijder|schrap) {_MIJ}( nummer| telefoonnummer| gegevens)? (van|uit) "
    r"(de|jullie|uw|het|je) (\w+ )?(lijst|bellijst|belbestand|bestand|database|systeem)\b",
    r"\bmijn (telefoon)?nummer (van|uit) (de|jullie|uw|het|je) (\w+ )?(lijst|bestand)\b",
    r"\bniet (meer )?gebeld (te )?worden\b",
    r"\bbel me niet (register|lijst)\b",
    r"\bgeen (telefoontjes|belletjes|oproepen|telefoon) meer\b",
]
_PATTERNS = re.compile("|".join(f"(?:{p})" for p in _EN + _NL))
_NEGATIONS = (
    (re.compile(r"\b(don'?t|do not|dont)\b"), "do not"),
    (re.compile(r"\b(won'?t)\b"), "will not"),
)


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[-_/]", " ", text)
    text = re.sub(r"[^\w\s'.]", " ", text)
    text = re.sub(r"(?<!\w)\.|\.(?!\w)", " ", text)
    for pattern, replacement in _NEGATIONS:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


def wants_no_more_calls(text: str) -> bool:
    """Whether ``text`` (one caller utterance) asks to stop calling this number."""
    return _PATTERNS.search(_normalise(text)) is not None
