"""Web-call tests reuse the API fixtures (SQLite and PostgreSQL) and the fake LLM."""

from tests.api.conftest import (  # noqa: F401 - pytest fixtures
    _drop_pg_schema,
    api,
    backend,
    client,
    keyring,
    make_org,
    org,
    services,
    settings,
)
from tests.fakes.openai_chat import fake_openai  # noqa: F401 - pytest fixture
