"""The organization behind an API key (resources.md §12)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from flireo.domain.common import WireModel


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
    #: days a call recording is kept (0 = forever); ``PATCH /account`` sets it
    recording_retention_days: int = 30
    price_per_minute: float
    currency: str


class DialPolicyOut(BaseModel):
    """The organization's toll-fraud guards as they apply now (services/dial_policy.py)."""

    #: ISO 3166 regions outbound calls and transfers may reach
    outbound_countries: list[str]
    #: ``numbers``: derived from the organization's own numbers (the default);
    #: ``organization``: set with ``PATCH /account/dial-policy``
    outbound_countries_source: Literal["numbers", "organization"]
    #: premium-rate, shared-cost and personal numbers allowed
    allow_premium_destinations: bool
    daily_outbound_minutes: int | None
    max_outbound_calls: int | None
    outbound_minutes_today: int
    active_outbound_calls: int


class DialPolicyUpdate(WireModel):
    """Fields left out stay as they are; ``null`` goes back to the default."""

    outbound_countries: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]] | None = Field(
        default=None, max_length=250
    )
    allow_premium_destinations: bool | None = None
    daily_outbound_minutes: int | None = Field(default=None, ge=0, le=1_000_000)
    max_outbound_calls: int | None = Field(default=None, ge=0, le=100_000)
