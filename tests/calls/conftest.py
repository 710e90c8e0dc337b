"""Whole calls over real SIP/RTP: the gateway on a loopback port, sipp or our own
softphone as the far end, the store, real Whisper/Piper and the fake LLM."""

from tests.api.conftest import (  # noqa: F401 - pytest fixtures
    _drop_pg_schema,
    api,
    client,
    keyring,
    make_org,
    org,
    services,
    settings,
)
from tests.fakes.openai_chat import fake_openai  # noqa: F401 - pytest fixture
from tests.telephony.conftest import sipp  # noqa: F401 - pytest fixture
