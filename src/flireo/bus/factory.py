from __future__ import annotations

from flireo.bus.base import Bus
from flireo.bus.memory import MemoryBus
from flireo.bus.redis import RedisBus
from flireo.settings import Settings


def create_bus(settings: Settings) -> Bus:
    if settings.bus == "redis":
        return RedisBus(settings.redis_url)
    return MemoryBus()
