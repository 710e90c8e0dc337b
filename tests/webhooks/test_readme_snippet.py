"""The README's webhook verification snippet verifies what Flireo signs."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError

from flireo.webhooks.signing import webhook_headers

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet() -> dict[str, Any]:
    match = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # the README's own code
    return namespace


@pytest.mark.parametrize(
    "secret", ["whsec_" + base64.b64encode(b"k" * 24).decode(), "plain-secret"]
)
def test_readme_snippet_verifies_flireo_signatures(secret: str) -> None:
    ns = snippet()
    body = b'{"message":{"type":"status-update"}}'
    headers = {
        k.lower(): v
        for k, v in webhook_headers(
            event="status-update",
            webhook_id="evt-1",
            timestamp=int(time.time()),
            body=body,
            secret=secret,
        ).items()
    }
    assert ns["verify_flireo"](secret, headers, body)
    assert not ns["verify_flireo"](secret, headers, body + b" ")
    standard_secret = (
        secret if secret.startswith("whsec_") else base64.b64encode(secret.encode()).decode()
    )
    assert ns["verify_standard"](standard_secret, headers, body) == {
        "message": {"type": "status-update"}
    }
    with pytest.raises(WebhookVerificationError):
        ns["verify_standard"](standard_secret, headers, body.replace(b"status", b"statuz"))
