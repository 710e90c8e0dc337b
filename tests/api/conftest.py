"""Fixtures for REST API tests: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from flireo.api.app import create_app
from flireo.security.secrets import Keyring, new_master_key
from flireo.services.builder import build_services
from flireo.services.container import Services
from flireo.services.organizations import create_api_key, create_organization
from flireo.settings import Settings
from tests.db import drop_postgres_schema_sync, postgres_database, sqlite_database


@dataclass
class RecordingDialer:
    """The dialer seam seen from the API: records what it is asked to dial."""

    dialed: list[str] = field(default_factory=list)

    async def dial(self, call_id: str) -> None:
        self.dialed.append(call_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_schema() -> Iterator[None]:
    yield
    drop_postgres_schema_sync()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        rate_limit_per_minute=100_000,
        allow_private_webhooks=True,
        initial_minutes_balance=100,
        # no SIP listener is bound to these settings (test gateways take ephemeral
        # ports): a loopback trunk on 5060 is not this server's own address
        sip_port=0,
    )


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([new_master_key()])


@pytest.fixture
async def services(
    backend: str, settings: Settings, keyring: Keyring, tmp_path: Path
) -> AsyncIterator[Services]:
    db = await (sqlite_database(tmp_path) if backend == "sqlite" else postgres_database())
    svc = build_services(settings, dialer=RecordingDialer(), db=db, keyring=keyring)
    await svc.bus.start()
    try:
        yield svc
    finally:
        await svc.bus.stop()
        await svc.http.aclose()
        await db.dispose()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as c:
        yield c


@dataclass
class Org:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


MakeOrg = Callable[..., Awaitable[Org]]


@pytest.fixture
def make_org(services: Services) -> MakeOrg:
    async def make(name: str = "Acme Corp", minutes: int = 100) -> Org:
        async with services.db.transaction() as s:
            org = await create_organization(s, name, minutes_balance=minutes)
            _, key = await create_api_key(s, org.id)
        return Org(org.id, key)

    return make


@pytest.fixture
async def org(make_org: MakeOrg) -> Org:
    return await make_org()


@pytest.fixture
async def api(client: httpx.AsyncClient, org: Org) -> httpx.AsyncClient:
    """A client already authenticated as ``org``."""
    client.headers.update(org.headers)
    return client
