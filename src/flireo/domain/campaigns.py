"""Campaigns and their leads (resources.md §13, guides.md §16)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, AliasChoices, Field, field_validator, model_validator

from flireo.domain.common import E164, OutModel, Pagination, Timestamp, WireModel

CampaignStatus = Literal["draft", "scheduled", "paused", "completed"]
LeadStatus = Literal[
    "pending", "calling", "completed", "failed", "no-answer", "voicemail", "busy", "do-not-call"
]
FINAL_LEAD_STATUSES: tuple[str, ...] = (
    "completed",
    "failed",
    "no-answer",
    "voicemail",
    "busy",
    "do-not-call",
)

#: status changes a client may ask for; ``completed`` is also set by the dialer
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    "draft": {"draft", "scheduled", "completed"},
    "scheduled": {"scheduled", "paused", "completed"},
    "paused": {"paused", "scheduled", "completed"},
    "completed": {"completed"},
}

_HHMMSS = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_ZONES = sorted(available_timezones())
_ZONE_SET = frozenset(_ZONES)


def _zone(v: str) -> str:
    if v not in _ZONE_SET:
        raise ValueError(f"unknown IANA time zone {v!r}")
    return v


#: an IANA time zone (the schema lists every zone this server knows)
TimeZone = Annotated[str, Field(json_schema_extra={"enum": _ZONES}), AfterValidator(_zone)]
#: ``HH:MM:SS`` (``HH:MM`` accepted), 24-hour
ClockTime = Annotated[str, Field(pattern=_HHMMSS)]
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def placeholders(template: str | None) -> set[str]:
    """``{{name}}`` placeholders used in a template."""
    return set(_PLACEHOLDER.findall(template or ""))


def fill_template(template: str, variables: dict[str, Any]) -> str:
    """Replace ``{{name}}`` with the variable's value (unknown ones stay as they are)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        return str(variables[key]) if key in variables else m.group(0)

    return _PLACEHOLDER.sub(sub, template)


def _time(v: str | None) -> str | None:
    return v if v is None or len(v) == 8 else v + ":00"


_END_TIME = (
    "HH:MM[:SS] in `timezone`. Must differ from schedule_start_time (else 400); an end "
    "before the start is a window across midnight."
)
_STATUS = (
    "Allowed changes: draft -> scheduled or completed; scheduled -> paused or completed; "
    "paused -> scheduled or completed; completed is final (any other change: 400)."
)


class _CampaignFields(WireModel):
    system_message_template: str | None = Field(default=None, max_length=50_000)
    number_id: str | None = None
    max_concurrent_calls: int | None = Field(default=None, ge=1, le=1000)
    calls_per_second: float | None = Field(default=None, gt=0, le=100)
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    retry_delay_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    #: false: the campaign's calls are not recorded (true leaves it to the agent)
    recording_enabled: bool | None = Field(
        default=None, validation_alias=AliasChoices("recording_enabled", "recordingEnabled")
    )

    @field_validator("schedule_start_time", "schedule_end_time", check_fields=False)
    @classmethod
    def _times(cls, v: str | None) -> str | None:
        return _time(v)


class CampaignCreate(_CampaignFields):
    name: str = Field(min_length=1, max_length=200)
    agent_id: str
    schedule_start_time: ClockTime = Field(
        default="09:00:00", validation_alias=AliasChoices("schedule_start_time", "start_time")
    )
    schedule_end_time: ClockTime = Field(
        default="17:00:00",
        validation_alias=AliasChoices("schedule_end_time", "end_time"),
        description=_END_TIME,
    )
    timezone: TimeZone = "Europe/Amsterdam"
    status: CampaignStatus = Field(default="draft", description=_STATUS)

    @model_validator(mode="after")
    def _window(self) -> CampaignCreate:
        if self.schedule_start_time == self.schedule_end_time:
            raise ValueError("schedule_start_time and schedule_end_time must differ")
        return self


class CampaignUpdate(_CampaignFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = None
    schedule_start_time: ClockTime | None = Field(
        default=None, validation_alias=AliasChoices("schedule_start_time", "start_time")
    )
    schedule_end_time: ClockTime | None = Field(
        default=None,
        validation_alias=AliasChoices("schedule_end_time", "end_time"),
        description=_END_TIME,
    )
    timezone: TimeZone | None = None
    status: CampaignStatus | None = Field(default=None, description=_STATUS)


class CampaignOut(OutModel):
    id: str
    name: str
    agent_id: str | None
    number_id: str | None
    system_message_template: str | None
    schedule_start_time: str
    schedule_end_time: str
    timezone: str
    status: CampaignStatus
    max_concurrent_calls: int
    calls_per_second: float
    max_attempts: int
    retry_delay_seconds: int
    recording_enabled: bool = True
    total_leads: int
    completed_leads: int
    created_at: Timestamp
    updated_at: Timestamp


class LeadCreate(WireModel):
    phone_number: E164 = Field(validation_alias=AliasChoices("phone_number", "number"))
    variables: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=100
    )
    timezone: TimeZone | None = None


class LeadBulkCreate(WireModel):
    leads: list[LeadCreate] = Field(
        min_length=1,
        max_length=1000,
        description="A phone number may appear once per campaign: among these items and "
        "the campaign's stored leads (a repeat is a 409 naming the item).",
    )


class LeadOut(OutModel):
    id: str
    campaign_id: str
    phone_number: str
    variables: dict[str, Any]
    timezone: str | None
    missing_variables: list[str]
    status: LeadStatus
    outcome: str | None
    call_id: str | None
    attempts: int
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp


class LeadsResponse(OutModel):
    leads: list[LeadOut]
    pagination: Pagination
