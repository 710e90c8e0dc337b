"""``flireo serve``: one process with the API, SIP/RTP calls, the webhook
outbox, post-call analysis, the campaign dialer, and the recordings' upload
retries and retention sweep on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os

import structlog
import uvicorn
from rich.console import Console
from rich.panel import Panel

from flireo.api.app import create_app
from flireo.bus.redis import RedisBus
from flireo.campaigns.runner import CampaignRunner
from flireo.clock import SystemClock
from flireo.cluster.drain import Drain, DrainingServer
from flireo.cluster.liveness import NodeHeartbeat, NodeIdInUse
from flireo.cluster.reaper import Reaper
from flireo.recordings.retention import RetentionSweeper
from flireo.recordings.uploads import RecordingUploader
from flireo.security.secrets import load_keyring
from flireo.services.analysis_jobs import AnalysisWorker
from flireo.services.builder import build_services
from flireo.services.call_lifecycle import CallLifecycle
from flireo.services.call_runner import CallRunner
from flireo.services.dialer import DisabledDialer
from flireo.services.organizations import bootstrap
from flireo.services.recovery import end_interrupted_calls
from flireo.services.sip_gateway import SipGateway
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.files import private_dir
from flireo.store.migrate import upgrade
from flireo.webcall.service import WebCalls
from flireo.webhooks.delivery import WebhookDeliverer

log = structlog.get_logger(__name__)


async def prepare_database(settings: Settings, db: Database, console: Console) -> None:
    """Migrate, then on an empty database create the first organization and show its key."""
    if settings.auto_migrate:
        await upgrade(db)
    async with db.transaction() as session:
        key = await bootstrap(session, settings.initial_minutes_balance)
    if key:
        console.print(
            Panel.fit(
                f"[bold]{key}[/bold]\n\nThis API key is shown once. Use it as\n"
                "  Authorization: Bearer <key>\n"
                "More keys: flireo keys create",
                title="First start: organization created",
                border_style="green",
            )
        )


async def serve(settings: Settings, console: Console | None = None) -> None:
    console = console or Console()
    # owner-only files from here on: the database, keys, recordings (issue 14)
    os.umask(0o077)
    private_dir(settings.data_dir)
    keyring = load_keyring(settings.secret_key, settings.data_dir, create=True)
    db = Database(settings.resolved_database_url)
    await prepare_database(settings, db, console)
    clock = SystemClock()
    services = build_services(
        settings, dialer=DisabledDialer(db, clock, settings), db=db, keyring=keyring, clock=clock
    )
    deliverer = WebhookDeliverer(
        db, services.http, services.vault, settings, clock, node_id=settings.node_id
    )
    services.kick_webhooks = deliverer.kick
    analysis = AnalysisWorker(
        db,
        services.vault,
        settings,
        clock,
        services.http,
        node_id=settings.node_id,
        on_webhook=deliverer.kick,
    )
    lifecycle = CallLifecycle(
        db,
        settings,
        clock,
        on_webhook=deliverer.kick,
        on_analysis=analysis.kick,
        bus=services.bus,
    )
    # the node id is this worker's before anything acts on the calls it owns
    await services.bus.start()
    heartbeat: NodeHeartbeat | None = None
    reaper: Reaper | None = None
    if isinstance(services.bus, RedisBus):
        heartbeat = NodeHeartbeat(
            services.bus.redis,
            settings.node_id,
            ttl_s=settings.node_heartbeat_ttl_s,
            sip=f"{settings.sip_public_host or settings.sip_host}:{settings.sip_port}",
            api=settings.resolved_public_base_url,
        )
        try:
            await heartbeat.claim()
        except NodeIdInUse:
            await services.bus.stop()
            await db.dispose()
            raise
        reaper = Reaper(
            lifecycle,
            services.bus.redis,
            settings.node_id,
            ttl_s=settings.node_heartbeat_ttl_s,
            on_webhook=deliverer.kick,
            on_analysis=analysis.kick,
        )
    await end_interrupted_calls(lifecycle, settings.node_id)
    runner = CallRunner(services, lifecycle)
    web_calls = services.web_calls = WebCalls(services, lifecycle, runner)
    gateway: SipGateway | None = None
    if settings.sip_enabled:
        gateway = SipGateway(services, lifecycle, runner)
        services.dialer = gateway
    campaigns = CampaignRunner(db, services.dialer, clock, settings.node_id, lifecycle=lifecycle)
    uploads = RecordingUploader(db, services.recordings, clock, node_id=settings.node_id)
    retention = RetentionSweeper(
        db,
        services.recordings.storage,
        clock,
        interval_seconds=settings.recording_sweep_interval_seconds,
    )
    await deliverer.start()
    await analysis.start()
    if gateway is not None:
        await gateway.start()
        log.info("sip listening", host=settings.sip_host, port=gateway.endpoint.port)

    def live_calls() -> int:
        return (gateway.live_calls if gateway is not None else 0) + len(web_calls.tasks)

    if heartbeat is not None:
        heartbeat.live_calls = live_calls
        await heartbeat.start()
    if reaper is not None:
        await reaper.start()
    await campaigns.start()
    await uploads.start()
    await retention.start()
    app = create_app(services, manage_lifecycle=False)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        # open live-event streams (SSE) must not hold the exit after a drain
        timeout_graceful_shutdown=10,
    )
    server = DrainingServer(config)

    async def stop_taking_calls() -> None:
        if gateway is not None:
            gateway.draining = True
        if heartbeat is not None:
            with contextlib.suppress(Exception):
                await heartbeat.beat()  # the others see ``draining`` at once
        await campaigns.stop()

    drain = Drain(
        timeout_s=settings.drain_timeout_s,
        live_calls=live_calls,
        on_start=stop_taking_calls,
        on_done=lambda forced: server.stop(force=forced),
    )
    server.drain = drain
    if heartbeat is not None:
        heartbeat.draining = lambda: drain.draining
    # everything built so far lives as long as the process: keep it out of the
    # collector's full passes (a gen-2 pass over it stalls the loop 15-35 ms)
    gc.collect()
    gc.freeze()
    log.info("serving", url=f"http://{settings.host}:{settings.port}", database=db.dialect)
    try:
        await server.serve()
    finally:
        await drain.cancel()
        if reaper is not None:
            await reaper.stop()
        await retention.stop()
        await uploads.stop()
        await campaigns.stop()
        await web_calls.stop()
        if gateway is not None:
            await gateway.stop()
        if heartbeat is not None:
            await heartbeat.stop()
        await services.bus.stop()
        await analysis.stop()
        # deliveries in flight finish: their leases would hold them from the other workers
        await deliverer.stop(grace_s=settings.webhook_timeout_seconds + 1)
        await services.http.aclose()
        await db.dispose()


def run(settings: Settings) -> None:
    try:
        asyncio.run(serve(settings))
    except NodeIdInUse as exc:  # a second worker started with the first one's id
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
