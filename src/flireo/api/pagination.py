from __future__ import annotations

from fastapi import Query

from flireo.domain.common import Page


def page(
    limit: int = Query(100, ge=1, le=1000, description="Rows per page (max 1000)"),
    offset: int = Query(0, ge=0, le=10_000_000, description="Rows to skip"),
) -> Page:
    return Page(limit=limit, offset=offset)
