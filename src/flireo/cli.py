"""The ``flireo`` command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flireo.clock import utcnow
from flireo.logs import configure_logging
from flireo.security.secrets import (
    Keyring,
    format_keyring,
    key_file,
    load_keyring,
    new_master_key,
)
from flireo.services import organizations as orgs
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.migrate import upgrade
from flireo.store.tables import Organization
from flireo.store.vault import Vault

app = typer.Typer(help="Flireo: self-hosted voice-AI phone agents.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="Manage organizations.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)
credits_app = typer.Typer(help="Prepaid call minutes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(db_app, name="db")
app.add_typer(secrets_app, name="secrets")
app.add_typer(credits_app, name="credits")

console = Console(width=None if sys.stdout.isatty() else 160)
T = TypeVar("T")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    settings = _settings()

    async def go() -> T:
        db = Database(settings.resolved_database_url)
        try:
            if settings.auto_migrate:
                await upgrade(db)
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _org_id(session: AsyncSession, org: str | None) -> str:
    if org:
        row = await session.get(Organization, org)
        if row is None:
            raise typer.BadParameter(f"no organization {org}", param_hint="--org")
        return row.id
    first = await orgs.first_organization(session)
    if first is None:
        raise typer.BadParameter("no organization yet: run `flireo serve` or `flireo orgs create`")
    return first.id


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (FLIREO_HOST)"),
    port: int = typer.Option(None, help="HTTP port (FLIREO_PORT)"),
) -> None:
    """Run the platform: REST API and call handling, on embedded defaults."""
    from flireo.server import run

    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    run(settings)


@app.command()
def call(
    target: str = typer.Argument(
        ..., help="A number registered on the server (+31850835037), or an agent id"
    ),
    say: list[str] = typer.Option(
        [], "--say", help="A caller line, spoken with the local Piper voice (repeatable)"
    ),
    wav: list[Path] = typer.Option(
        [], "--wav", help="A caller line from a mono PCM WAV file, after the --say lines"
    ),
    server: str = typer.Option(
        None, help="The server's SIP address host:port [default: 127.0.0.1:FLIREO_SIP_PORT]"
    ),
    from_number: str = typer.Option(None, "--from", help="Caller number, e.g. +31612345678"),
    record: Path = typer.Option(None, help="Save the call as a stereo WAV (you left, agent right)"),
    timeout: float = typer.Option(30.0, help="Seconds to wait for an answer"),
    hangup_after: float = typer.Option(
        None, help="Hang up this many seconds after the answer (default: after the last line)"
    ),
    max_wait: float = typer.Option(15.0, help="Longest wait for the agent before each line"),
    api_url: str = typer.Option(
        "http://127.0.0.1:8000", envvar="FLIREO_URL", help="API, to call an agent by id"
    ),
    api_key: str = typer.Option(None, envvar="FLIREO_API_KEY", help="API key, with an agent id"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show SIP/RTP logs"),
) -> None:
    """Call an agent as a softphone: speak lines, print the live transcript."""
    import httpx

    from flireo.softphone import Say, Softphone, SoftphoneError, Wav, parse_server

    settings = Settings()
    configure_logging(settings.log_level if verbose else "warning", json=settings.log_json)
    try:
        address = parse_server(server or f"127.0.0.1:{settings.sip_port}")
    except SoftphoneError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server") from None
    root = api_url.rstrip("/")
    root = root if root.endswith("/api/v1") else root + "/api/v1"

    async def go() -> int:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with httpx.AsyncClient(base_url=root, headers=headers, timeout=10) as http:
            phone = Softphone(
                server=address,
                from_number=from_number,
                console=console,
                api=http if api_key else None,
                timeout_s=timeout,
                max_wait_s=max_wait,
                hangup_after_s=hangup_after,
                record=record,
            )
            result = await phone.call(target, [*map(Say, say), *map(Wav, wav)])
        return result.exit_code

    try:
        code = asyncio.run(go())
    except SoftphoneError as exc:
        console.print(f"[bold red]Cannot call:[/] {exc}", markup=True, highlight=False)
        code = 2
    raise typer.Exit(code)


@app.command("test")
def agent_test(
    suite: Path = typer.Argument(..., help="The suite file (YAML): scenarios and expectations"),
    server: str = typer.Option(
        None, help="The server's SIP address host:port [default: 127.0.0.1:FLIREO_SIP_PORT]"
    ),
    api_url: str = typer.Option(
        "http://127.0.0.1:8000", envvar="FLIREO_URL", help="API, to read call records"
    ),
    api_key: str = typer.Option(None, envvar="FLIREO_API_KEY", help="API key of the org"),
    start_server: bool = typer.Option(
        False, "--start-server", help="Run a flireo serve of its own (free ports, temp data)"
    ),
    concurrency: int = typer.Option(2, help="Calls at once"),
    junit: Path = typer.Option(None, help="Write JUnit XML here"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show SIP/RTP logs"),
) -> None:
    """Test an agent: simulated callers over real SIP, expectations on the call records.

    Exit code 0: every scenario passed; 1: a scenario failed; 2: bad suite or arguments.
    """
    from flireo.testing.cli import run_test_command

    settings = Settings()
    configure_logging(settings.log_level if verbose else "warning", json=settings.log_json)
    code = run_test_command(
        console,
        suite,
        server=server,
        api_url=api_url,
        api_key=api_key,
        start_server=start_server,
        concurrency=concurrency,
        junit=junit,
        default_sip_port=settings.sip_port,
    )
    raise typer.Exit(code)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option("cli", help="Label for the key"),
    org: str = typer.Option(None, help="Organization id (default: the first one)"),
    expires_days: int = typer.Option(None, help="Expire after this many days"),
) -> None:
    """Create an API key and print it once."""

    async def work(db: Database) -> str:
        async with db.transaction() as s:
            expires = utcnow() + timedelta(days=expires_days) if expires_days else None
            _, key = await orgs.create_api_key(s, await _org_id(s, org), name, expires_at=expires)
            return key

    key = _with_db(work)
    console.print(f"[bold]{key}[/bold]")
    console.print("Store it now: it is not shown again.", style="dim")


@keys_app.command("list")
def keys_list(org: str = typer.Option(None, help="Only this organization")) -> None:
    """List API keys (prefixes only)."""

    async def work(db: Database) -> Table:
        table = Table("id", "organization", "name", "prefix", "created", "last used", "state")
        async with db.read() as s:
            for k in await orgs.list_api_keys(s, org):
                state = (
                    "revoked"
                    if k.revoked_at
                    else "expired"
                    if k.expires_at and k.expires_at < utcnow()
                    else "active"
                )
                table.add_row(
                    k.id,
                    k.org_id,
                    k.name,
                    k.prefix + "…",
                    f"{k.created_at:%Y-%m-%d %H:%M}",
                    f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
                    state,
                )
        return table

    console.print(_with_db(work))


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="Key id or display prefix (flk_xxxxxxxx)"),
) -> None:
    """Revoke a key; it stops working at once."""

    async def work(db: Database) -> str:
        async with db.transaction() as s:
            row = await orgs.revoke_api_key(s, key, utcnow())
            return row.prefix

    console.print(f"revoked {_with_db(work)}…")


@orgs_app.command("create")
def orgs_create(
    name: str,
    minutes: int = typer.Option(0, help="Initial minutes balance"),
    email: str = typer.Option(None),
) -> None:
    """Create an organization and print its first API key."""

    async def work(db: Database) -> tuple[str, str]:
        async with db.transaction() as s:
            org = await orgs.create_organization(s, name, minutes_balance=minutes, email=email)
            _, key = await orgs.create_api_key(s, org.id)
            return org.id, key

    org_id, key = _with_db(work)
    console.print(f"organization {org_id}\nAPI key [bold]{key}[/bold] (shown once)")


@orgs_app.command("list")
def orgs_list() -> None:
    async def work(db: Database) -> Table:
        table = Table("id", "name", "minutes balance")
        async with db.read() as s:
            for o in (
                await s.execute(select(Organization).order_by(Organization.created_at))
            ).scalars():
                table.add_row(o.id, o.name, str(o.minutes_balance))
        return table

    console.print(_with_db(work))


@credits_app.command("add")
def credits_add(
    minutes: int = typer.Argument(..., help="Minutes to add (negative to remove)"),
    org: str = typer.Option(None, help="Organization id (default: the first one)"),
) -> None:
    """Top up an organization's prepaid minutes."""

    async def work(db: Database) -> int:
        async with db.transaction() as s:
            org_id = await _org_id(s, org)
            await s.execute(
                update(Organization)
                .where(Organization.id == org_id)
                .values(minutes_balance=Organization.minutes_balance + minutes)
            )
            row = await s.get(Organization, org_id)
            assert row is not None
            await s.refresh(row)
            return row.minutes_balance

    console.print(f"balance: {_with_db(work)} minutes")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations (SQLite or PostgreSQL, from FLIREO_DATABASE_URL)."""
    settings = _settings()

    async def go() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await upgrade(db, revision)
        finally:
            await db.dispose()

    asyncio.run(go())
    console.print(f"database at {revision}")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with a new master key."""
    settings = _settings()
    old = load_keyring(settings.secret_key, settings.data_dir, create=False)
    new_key = new_master_key()
    transition = Keyring([new_key, *old.keys])
    path = key_file(settings.data_dir)
    from_file = not settings.secret_key
    if from_file:
        # both keys on disk first, so a crash mid-way leaves every secret readable
        path.write_text(format_keyring(transition.keys) + "\n")

    async def work(db: Database) -> int:
        async with db.transaction() as s:
            return await Vault(old).reencrypt_all(s, Keyring([new_key]))

    count = _with_db(work)
    if from_file:
        path.write_text(format_keyring([new_key]) + "\n")
        console.print(f"re-encrypted {count} secrets; new key written to {path}")
    else:
        console.print(f"re-encrypted {count} secrets. Set FLIREO_SECRET_KEY to:")
        console.print(format_keyring([new_key]), markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
