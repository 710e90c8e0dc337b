"""The "stop calling me" detector (English and Dutch) and its near misses."""

from __future__ import annotations

import pytest

from flireo.campaigns.stop_requests import wants_no_more_calls


@pytest.mark.parametrize(
    "text",
    [
        "Stop calling me!",
        "Please don\u2019t call me again.",
        "dont ever call me again",
        "Never call this number again",
        "Take me off your list",
        "Remove my number from your calling list please",
        "Put me on your do-not-call list",
        "I'm on the do not call list, you know",
        "I don't want any more calls",
        "No more calls, thanks",
        "Bel me niet meer!",
        "Wilt u mij niet meer bellen?",
        "U hoeft niet meer te bellen",
        "Stop met bellen",
        "Haal me van jullie lijst",
        "Verwijder mij uit uw bestand",
        "Ik wil niet meer gebeld worden",
        "Ik sta in het Bel-me-niet Register",
        "bel mij nooit meer",
        "Geen telefoontjes meer alstublieft",
    ],
)
def test_requests_to_stop_calling_are_recognised(text: str) -> None:
    assert wants_no_more_calls(text)


@pytest.mark.parametrize(
    "text",
    [
        "Can you call me again tomorrow?",
        "Don't call me before ten",
        "Call me back later",
        "Who is calling me?",
        "Stop, I need to think",
        "I am not interested",
        "Bel me morgen terug",
        "Kunt u mij later terugbellen?",
        "Bel me maar na vijven",
        "Ik ben niet geïnteresseerd",
    ],
)
def test_ordinary_replies_are_not_stop_requests(text: str) -> None:
    assert not wants_no_more_calls(text)
