"""Usage logs and summaries (resources.md §6, guides.md §6)."""

from __future__ import annotations

from pydantic import BaseModel

from flireo.domain.common import OutModel, Pagination, Timestamp


class VendorUsage(BaseModel):
    stt_seconds: float = 0.0
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    tts_characters: int = 0


class UsageLogOut(OutModel):
    id: str
    call_id: str
    agent_id: str | None
    number_id: str | None
    direction: str | None
    phone_number: str | None
    duration_seconds: int
    minutes_used: int
    cost: float
    vendor_usage: VendorUsage
    created_at: Timestamp


class UsageSummary(BaseModel):
    total_minutes: int
    total_seconds: int
    total_cost: float
    total_calls: int
    currency: str
    price_per_minute: float
    vendor_usage: VendorUsage


class UsageResponse(BaseModel):
    logs: list[UsageLogOut]
    pagination: Pagination
    summary: UsageSummary
