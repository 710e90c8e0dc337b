"""Build the process-wide :class:`Services` from settings."""

from __future__ import annotations

from flireo.api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from flireo.bus.factory import create_bus
from flireo.bus.redis import RedisBus
from flireo.clock import Clock, SystemClock
from flireo.security.egress import platform_client
from flireo.security.secrets import Keyring, load_keyring
from flireo.services.container import Services
from flireo.services.dialer import Dialer
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.vault import Vault
from flireo.webhooks.signing import USER_AGENT


def build_services(
    settings: Settings,
    *,
    dialer: Dialer,
    db: Database | None = None,
    keyring: Keyring | None = None,
    clock: Clock | None = None,
) -> Services:
    keyring = keyring or load_keyring(settings.secret_key, settings.data_dir, create=True)
    bus = create_bus(settings)
    limiter: RateLimiter = (
        RedisRateLimiter(bus.redis)
        if isinstance(bus, RedisBus)
        else MemoryRateLimiter(max_keys=settings.rate_limit_max_keys)
    )
    http = platform_client(settings, lambda: settings.allow_private_urls)
    http.headers["User-Agent"] = USER_AGENT  # Flireo/<version> on every outgoing request
    return Services(
        settings=settings,
        db=db or Database(settings.resolved_database_url),
        vault=Vault(
            keyring,
            reload=lambda: load_keyring(settings.secret_key, settings.data_dir, create=False),
        ),
        bus=bus,
        dialer=dialer,
        http=http,
        clock=clock or SystemClock(),
        limiter=limiter,
    )
