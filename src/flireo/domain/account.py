"""The organization behind an API key (resources.md §12)."""

from __future__ import annotations

from pydantic import BaseModel


class AccountOut(BaseModel):
    id: str
    name: str
    #: older auth-page spelling of ``name``
    company_name: str
    email: str | None
    minutes_balance: int
    monthly_usage_minutes: int
    active_numbers: int
    active_agents: int
    active_calls: int
    max_concurrent_calls: int | None
    reserved_inbound_calls: int
    price_per_minute: float
    currency: str
