"""The conversation engine: one live call (:class:`CallSession`).

Public names are importable from here; they load lazily so that
``flireo.engine.transport`` stays cheap to import for the telephony layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flireo.engine.config import SessionConfig
    from flireo.engine.events import EventSink, RecordingSink
    from flireo.engine.memory_transport import MemoryTransport
    from flireo.engine.outcome import CallOutcome
    from flireo.engine.session import CallSession

__all__ = [
    "CallOutcome",
    "CallSession",
    "EventSink",
    "MemoryTransport",
    "RecordingSink",
    "SessionConfig",
]

_WHERE = {
    "CallOutcome": "flireo.engine.outcome",
    "CallSession": "flireo.engine.session",
    "EventSink": "flireo.engine.events",
    "MemoryTransport": "flireo.engine.memory_transport",
    "RecordingSink": "flireo.engine.events",
    "SessionConfig": "flireo.engine.config",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flireo.engine' has no attribute {name!r}")
    return getattr(import_module(module), name)
