"""SIP URIs in transfer commands and tool destinations are printable ASCII (RFC 3261:
anything else is %-escaped). The pattern says so in a way JSON Schema (ECMAScript)
and Python read alike: with ``\\S`` Python also refused U+0085, which ECMAScript's
``\\S`` allows, so schemathesis sent "valid" data the API refused."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from flireo.domain.calls import Transfer
from flireo.domain.tools import SipDestination


@pytest.mark.parametrize(
    "uri", ["sip:alice@example.com", "sips:+31612345678@pbx.example;user=phone"]
)
def test_ascii_sip_uris_pass(uri: str) -> None:
    assert Transfer(type="transfer", destination=uri).destination == uri
    assert SipDestination(type="sip", sipUri=uri).sip_uri == uri


@pytest.mark.parametrize(
    "uri", ["sips:\u00bb'\u00d2\u0085", "sip:al\u00efce@example.com", "sip:a b"]
)
def test_other_characters_are_refused_and_the_schema_says_so(uri: str) -> None:
    with pytest.raises(ValidationError):
        Transfer(type="transfer", destination=uri)
    with pytest.raises(ValidationError):
        SipDestination(type="sip", sipUri=uri)
    pattern = TypeAdapter(Transfer).json_schema()["properties"]["destination"]["pattern"]
    # the documented pattern refuses it too, read as plain ASCII classes
    assert "\\S" not in pattern
    assert re.fullmatch(pattern, uri, flags=re.ASCII) is None
