"""Organization-scoped row access: the one place that enforces tenant isolation
for lookups by id. A foreign or unknown id is the same 404."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from flireo.errors import Conflict, NotFound


class OwnedRow(Protocol):
    id: Any
    org_id: Any


T = TypeVar("T")


async def get_owned(
    session: AsyncSession,
    model: type[T],
    org_id: str,
    row_id: str,
    *,
    what: str,
    param: str | None = None,
    for_update: bool = False,
) -> T:
    """The row ``row_id`` of ``org_id``, or :class:`NotFound` (never leaks other orgs)."""
    stmt = select(model).where(
        model.id == row_id,  # type: ignore[attr-defined]
        model.org_id == org_id,  # type: ignore[attr-defined]
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{what} not found", param=param)
    return row


async def list_owned(
    session: AsyncSession,
    model: type[T],
    org_id: str,
    *,
    order_by: InstrumentedAttribute[Any] | None = None,
) -> Sequence[T]:
    stmt = select(model).where(model.org_id == org_id)  # type: ignore[attr-defined]
    stmt = stmt.order_by(order_by if order_by is not None else model.created_at)  # type: ignore[attr-defined]
    return (await session.execute(stmt)).scalars().all()


async def count_owned(session: AsyncSession, model: type[Any], org_id: str, *where: Any) -> int:
    stmt = select(func.count()).select_from(model).where(model.org_id == org_id, *where)
    return int((await session.execute(stmt)).scalar_one())


def apply_fields(row: object, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(row, key, value)


async def flush_unique(session: AsyncSession, message: str, *, param: str | None = None) -> None:
    """Flush; a unique-constraint violation becomes a 409 :class:`Conflict`."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message, param=param) from exc
