"""``flireo test SUITE.yaml``: the command's body (cli.py holds only its options)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from flireo.softphone import SoftphoneError, parse_server
from flireo.testing.report import results_table, write_junit
from flireo.testing.runner import RunOptions, ScenarioResult, SetupError, run_suite
from flireo.testing.server import StartedServer
from flireo.testing.suite import Scenario, Suite, SuiteError, load_suite

__all__ = ["run_test_command"]

#: exit codes
PASSED, FAILED, BAD_INPUT = 0, 1, 2


def _api_root(url: str) -> str:
    root = url.rstrip("/")
    return root if root.endswith("/api/v1") else root + "/api/v1"


def run_test_command(
    console: Console,
    suite_path: Path,
    *,
    server: str | None,
    api_url: str | None,
    api_key: str | None,
    start_server: bool,
    concurrency: int,
    junit: Path | None,
    default_sip_port: int,
) -> int:
    try:
        suite = load_suite(suite_path)
    except SuiteError as exc:
        console.print(f"[bold red]Bad suite:[/]\n{escape(str(exc))}", highlight=False)
        return BAD_INPUT
    if start_server and server:
        console.print("[bold red]Bad arguments:[/] --start-server or --server, not both")
        return BAD_INPUT
    if concurrency < 1:
        console.print("[bold red]Bad arguments:[/] --concurrency must be at least 1")
        return BAD_INPUT
    if suite.agent is not None and not start_server and not api_key:
        console.print(
            "[bold red]Bad arguments:[/] the suite creates an agent through the API: "
            "set FLIREO_API_KEY (or --api-key) and --api-url, or use --start-server"
        )
        return BAD_INPUT
    sip: tuple[str, int] | None = None
    if not start_server:
        try:
            sip = parse_server(server or f"127.0.0.1:{default_sip_port}")
        except SoftphoneError as exc:
            console.print(f"[bold red]Bad --server:[/] {escape(str(exc))}")
            return BAD_INPUT
    return asyncio.run(_run(console, suite, sip, api_url, api_key, concurrency, junit))


async def _run(
    console: Console,
    suite: Suite,
    sip: tuple[str, int] | None,
    api_url: str | None,
    api_key: str | None,
    concurrency: int,
    junit: Path | None,
) -> int:
    started: StartedServer | None = None
    if sip is None:
        started = StartedServer()
        console.print("Starting flireo serve …", style="dim")
        try:
            await started.start()
        except RuntimeError as exc:
            console.print(f"[bold red]Cannot start the server:[/] {escape(str(exc))}")
            await started.stop()
            started.cleanup()
            return FAILED
        sip, api_url, api_key = started.sip, started.url, started.api_key
        console.print(f"Server at {started.url}, SIP {sip[0]}:{sip[1]}", style="dim")
    options = RunOptions(
        sip=sip,
        api_root=_api_root(api_url) if api_url and api_key else None,
        api_key=api_key,
        concurrency=concurrency,
    )
    total = len(suite.scenarios)
    finished: list[ScenarioResult] = []

    def on_start(scenario: Scenario) -> None:
        console.print(f"[dim]… {escape(scenario.name)}[/]", highlight=False)

    def on_done(result: ScenarioResult) -> None:
        finished.append(result)
        mark = "[green]✓ passed[/]" if result.passed else "[red]✗ failed[/]"
        console.print(
            f"[{len(finished)}/{total}] {escape(result.name)}: {mark} ({result.duration_s:.1f} s)",
            highlight=False,
        )

    try:
        results = await run_suite(suite, options, on_start=on_start, on_done=on_done)
    except SetupError as exc:
        console.print(f"[bold red]Cannot run the suite:[/] {escape(str(exc))}")
        return FAILED
    finally:
        if started is not None:
            await started.stop()
            started.cleanup()
    console.print(results_table(results))
    passed = sum(r.passed for r in results)
    console.print(
        f"{passed} of {len(results)} scenarios passed",
        style="bold green" if passed == len(results) else "bold red",
    )
    if junit is not None:
        write_junit(results, suite.name, junit)
        console.print(f"JUnit XML written to {escape(str(junit))}", style="dim")
    return PASSED if passed == len(results) else FAILED
