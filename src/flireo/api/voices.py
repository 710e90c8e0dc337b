"""``/voices`` (resources.md §8): the voices an agent of this organization can use now.

* The local Piper voice(s) are always listed.
* OpenAI TTS and xAI realtime voices are fixed, documented sets
  (:mod:`flireo.providers.catalog`), listed when the organization has a key for
  the vendor: its BYOK entry, else the platform's ``FLIREO_*_API_KEY``.
* ElevenLabs and Cartesia voices belong to the key's account (premade, cloned,
  library voices), so they are fetched from the vendor with that key and kept
  for :data:`LIBRARY_TTL` seconds per vendor and key. A vendor that refuses or
  fails never fails the request: it is named in ``unavailable`` with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query, Request

from flireo.api.auth import Principal, principal, services
from flireo.api.errors import error_responses
from flireo.api.pagination import page
from flireo.clock import Clock
from flireo.domain.common import Page, Pagination
from flireo.domain.voices import (
    MULTILINGUAL,
    VOICE_PROVIDERS,
    VoiceOut,
    VoiceProvider,
    VoicesResponse,
)
from flireo.errors import ProviderError
from flireo.providers.catalog import OPENAI_TTS_VOICES, XAI_REALTIME_VOICES, VoiceInfo
from flireo.providers.tts import cartesia, elevenlabs
from flireo.providers.tts.local_piper import PIPER_VOICES
from flireo.services import credentials
from flireo.services.container import Services

router = APIRouter(prefix="/voices", tags=["Voices"], responses=error_responses(400, 401, 413, 429))

#: seconds a vendor's voice library is reused (per vendor, base URL and key)
LIBRARY_TTL = 300.0
#: seconds a vendor failure is remembered before asking again
FAILURE_TTL = 30.0
#: the longest wait for a vendor's voice list
LIBRARY_TIMEOUT = 5.0
NO_KEY = "no API key for this provider (BYOK or platform)"
LANGUAGE_TAG = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"


@dataclass(slots=True)
class _Entry:
    expires: float
    voices: list[VoiceInfo]
    error: ProviderError | None = None


class VoiceLibraryCache:
    """Vendor voice libraries by (vendor, base URL, SHA-256 of the key); bounded LRU.

    Keys are never stored, only their hashes: a rotated BYOK key is a new entry.
    """

    def __init__(self, clock: Clock, max_entries: int = 256) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()

    async def get(
        self,
        provider: str,
        base_url: str,
        api_key: str,
        fetch: Callable[[], Awaitable[list[VoiceInfo]]],
    ) -> list[VoiceInfo]:
        key = (provider, base_url, hashlib.sha256(api_key.encode()).hexdigest())
        now = self._clock.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            self._entries.move_to_end(key)
            if entry.error is not None:
                raise entry.error
            return entry.voices
        try:
            voices = await fetch()
        except ProviderError as exc:
            self._store(key, _Entry(now + FAILURE_TTL, [], exc))
            raise
        self._store(key, _Entry(now + LIBRARY_TTL, voices))
        return voices

    def _store(self, key: tuple[str, str, str], entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


def library_cache(request: Request, svc: Services = Depends(services)) -> VoiceLibraryCache:
    """The application's cache (one per app, created on first use)."""
    state = request.app.state
    cache = getattr(state, "voice_library_cache", None)
    if not isinstance(cache, VoiceLibraryCache):
        cache = VoiceLibraryCache(svc.clock)
        state.voice_library_cache = cache
    return cache


@router.get("", response_model=VoicesResponse, summary="List available voices")
async def list_voices(
    provider: VoiceProvider | None = Query(None, description="Only this provider's voices"),
    language: str | None = Query(
        None,
        max_length=35,
        pattern=LANGUAGE_TAG,
        description=(
            "Voices that speak this language: `en` matches `en`, `en-US`, `en-GB`...; "
            "`en-US` matches `en-US` and plain `en`. Multilingual voices always match."
        ),
    ),
    window: Page = Depends(page),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
    cache: VoiceLibraryCache = Depends(library_cache),
) -> VoicesResponse:
    wanted = [provider] if provider else list(VOICE_PROVIDERS)
    keys: dict[VoiceProvider, str | None] = {}
    async with svc.db.read() as s:
        for name in wanted:
            if name != "piper":
                keys[name] = await credentials.resolve_key(
                    s, svc.vault, svc.settings, who.org_id, name
                )
    results = await asyncio.gather(
        *(_provider_voices(name, keys.get(name), svc, cache) for name in wanted)
    )
    voices: list[VoiceOut] = []
    unavailable: dict[str, str] = {}
    for name, (found, problem) in zip(wanted, results, strict=True):
        if problem is not None:
            unavailable[name] = problem
        voices.extend(v for v in found if language is None or speaks(v.language, language))
    shown = voices[window.offset : window.offset + window.limit]
    return VoicesResponse(
        voices=shown,
        by_language=by_language(shown),
        unavailable=unavailable,
        pagination=Pagination(total=len(voices), limit=window.limit, offset=window.offset),
    )


async def _provider_voices(
    provider: VoiceProvider, api_key: str | None, svc: Services, cache: VoiceLibraryCache
) -> tuple[list[VoiceOut], str | None]:
    """(voices, why none) for one provider."""
    if provider == "piper":
        return [
            VoiceOut.model_validate({**v, "set_in": "tts_config.voiceId"}) for v in PIPER_VOICES
        ], None
    if not api_key:
        return [], NO_KEY
    settings = svc.settings
    try:
        if provider == "openai":
            found = list(OPENAI_TTS_VOICES)
        elif provider == "xai_realtime":
            found = list(XAI_REALTIME_VOICES)
        elif provider == "elevenlabs":
            found = await cache.get(
                provider,
                settings.elevenlabs_base_url,
                api_key,
                lambda: elevenlabs.list_voices(
                    api_key=api_key,
                    base_url=settings.elevenlabs_base_url,
                    http=svc.http,
                    request_timeout=LIBRARY_TIMEOUT,
                ),
            )
        else:
            found = await cache.get(
                provider,
                settings.cartesia_base_url,
                api_key,
                lambda: cartesia.list_voices(
                    api_key=api_key,
                    base_url=settings.cartesia_base_url,
                    http=svc.http,
                    request_timeout=LIBRARY_TIMEOUT,
                ),
            )
    except ProviderError as exc:
        return [], f"the voice list could not be fetched: {exc.message}"
    return [_vendor_voice(v) for v in found if v.id], None


def _vendor_voice(info: VoiceInfo) -> VoiceOut:
    return VoiceOut.model_validate(
        {
            "id": info.id,
            "name": info.name,
            "provider": info.provider,
            "language": info.language,
            "gender": info.gender,
            "sample_rate": info.sample_rate,
            "kind": "vendor",
            "set_in": "llm_config.voice"
            if info.provider == "xai_realtime"
            else "tts_config.voiceId",
        }
    )


def speaks(voice_language: str | None, wanted: str) -> bool:
    """Whether a voice of ``voice_language`` (None: multilingual) speaks ``wanted``."""
    if voice_language is None:
        return True
    voice = voice_language.replace("_", "-").lower()
    asked = wanted.replace("_", "-").lower()
    return voice == asked or voice.startswith(asked + "-") or asked.startswith(voice + "-")


def by_language(voices: list[VoiceOut]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for voice in voices:
        groups.setdefault(voice.language or MULTILINGUAL, []).append(voice.id)
    return groups
