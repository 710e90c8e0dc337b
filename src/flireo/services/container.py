"""Everything a request or a call needs, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from flireo.api.ratelimit import RateLimiter
from flireo.bus.base import Bus
from flireo.clock import Clock
from flireo.recordings.service import Recordings
from flireo.recordings.storage import storage_from_settings
from flireo.services.dialer import Dialer
from flireo.settings import Settings
from flireo.store.db import Database
from flireo.store.vault import Vault

if TYPE_CHECKING:
    from flireo.webcall.service import WebCalls


@dataclass
class Services:
    settings: Settings
    db: Database
    vault: Vault
    bus: Bus
    dialer: Dialer
    http: httpx.AsyncClient
    clock: Clock
    limiter: RateLimiter
    #: api key id -> monotonic time of the last ``last_used_at`` write
    key_last_used: dict[str, float] = field(default_factory=dict)
    #: wakes the webhook deliverer of this process (set by the server)
    kick_webhooks: Callable[[], None] = lambda: None
    #: browser calls over WebRTC (``POST /calls/web``), set by the server
    web_calls: WebCalls | None = None
    _recordings: Recordings | None = None

    @property
    def recordings(self) -> Recordings:
        """Call recordings: storage back-end (``FLIREO_RECORDINGS_URL``) and signed links."""
        if self._recordings is None:
            self._recordings = Recordings(
                storage_from_settings(self.settings),
                self.settings,
                self.clock,
                node_id=self.settings.node_id,
            )
        return self._recordings
