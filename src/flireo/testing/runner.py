"""Running a suite: each scenario is one real call by the project's softphone
(:class:`flireo.softphone.Softphone`: SIP/RTP, Piper for the caller, local
Whisper to hear the agent), driven by the scenario's steps or an LLM persona;
then its call record is read through the API and the expectations checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from rich.console import Console

from flireo.softphone import (
    CallControl,
    CallDriver,
    CallResult,
    Say,
    Softphone,
    SoftphoneError,
    Synthesizer,
    Transcriber,
    Wav,
)
from flireo.testing import noise as noises
from flireo.testing.expectations import CallEvidence, Check, check_all
from flireo.testing.llm import LlmError, chat
from flireo.testing.suite import Noise, Persona, Scenario, Step, Suite

__all__ = ["RunOptions", "ScenarioResult", "SetupError", "run_suite"]

_FINAL = ("ended", "failed", "rejected")


class SetupError(Exception):
    """The suite cannot run at all (server unreachable, agent not creatable...)."""


@dataclass
class RunOptions:
    sip: tuple[str, int]
    #: the API root (``.../api/v1``) and key; None: no record-based expectations
    api_root: str | None = None
    api_key: str | None = None
    concurrency: int = 2
    #: seconds to wait for a call record to reach its final status
    record_timeout_s: float = 30.0


@dataclass
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    #: why the scenario could not run (the call failed, the script broke)
    error: str | None = None
    duration_s: float = 0.0
    call_id: str | None = None
    transcript: str = ""

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)


Progress = Callable[[ScenarioResult], None]


# ---- the caller's side ------------------------------------------------------------------


class _Caller:
    """One scenario's caller: speaks its lines over optional background noise."""

    def __init__(self, control: CallControl, bed: np.ndarray | None, amplitude: float) -> None:
        self.c = control
        self._bed, self._amplitude, self._offset = bed, amplitude, 0
        self._pump: asyncio.Task[None] | None = None
        #: the pump pauses while a line plays (speech carries its own noise)
        self._speaking = False

    def start_noise(self) -> None:
        if self._bed is not None:
            self._pump = asyncio.create_task(self._noise())

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    def _noisy(self, pcm: bytes) -> bytes:
        if self._bed is None:
            return pcm
        out = noises.mix(pcm, self._bed, self._offset, self._amplitude)
        self._offset = (self._offset + len(pcm) // 2) % self._bed.size
        return out

    async def _noise(self) -> None:
        """Keep ~100 ms of noise queued whenever the caller is not speaking."""
        chunk = bytes(2 * 1600)  # 100 ms of silence, noise added
        while not self.c.ended.is_set():
            if not self._speaking and self.c.queued_samples < 800:
                await self.c.send_audio(self._noisy(chunk))
            await asyncio.sleep(0.04)

    async def say(self, label: str, pcm: bytes) -> None:
        self._speaking = True
        try:
            await self.c.speak(label, self._noisy(pcm))
        finally:
            self._speaking = False


async def _prepare_steps(control: CallControl, steps: list[Step]) -> list[bytes | None]:
    audio: list[bytes | None] = []
    for step in steps:
        text = step.say or step.backchannel or step.interrupt
        if text is not None:
            audio.append((await control.prepare(Say(text)))[1])
        elif step.wav is not None:
            audio.append((await control.prepare(Wav(step.wav)))[1])
        else:
            audio.append(None)
    return audio


async def _run_steps(
    caller: _Caller, steps: list[Step], audio: list[bytes | None], max_wait_s: float
) -> None:
    c = caller.c
    for step, pcm in zip(steps, audio, strict=True):
        if c.ended.is_set():
            return
        during = step.backchannel is not None or step.interrupt is not None
        if during:
            if step.wait != "none":
                await c.agent_speaking(max_wait_s)
            await asyncio.sleep(0.5 if step.delay_s is None else step.delay_s)
        else:
            if step.wait != "none" and step.pause is None and step.hangup is None:
                await c.agent_turn()
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
        if c.ended.is_set():
            return
        if step.pause is not None:
            await c.wait_ended(step.pause)
        elif step.hangup:
            return
        elif step.dtmf is not None:
            await c.send_dtmf(step.dtmf)
        else:
            assert pcm is not None
            label = step.say or step.backchannel or step.interrupt or f"[{step.wav}]"
            await caller.say(label, pcm)
    await c.agent_turn()


async def _run_persona(
    caller: _Caller,
    persona: Persona,
    suite: Suite,
    http: httpx.AsyncClient,
) -> None:
    assert suite.caller_llm is not None
    c = caller.c
    history: list[dict[str, str]] = [
        {
            "role": "system",
            "content": (
                "You are the CALLER in a phone call with a voice agent. Stay in character:\n"
                f"{persona.prompt}\n"
                "Answer with one or two short spoken sentences, nothing else. When your goal "
                f"is reached or the call is over, answer exactly {persona.end_token}."
            ),
        }
    ]
    heard = 0
    for turn in range(persona.max_turns):
        await c.agent_turn()
        if c.ended.is_set():
            return
        said = c.result.said("agent")
        agent_text = " ".join(said[heard:]).strip()
        heard = len(said)
        history.append({"role": "user", "content": agent_text or "(silence)"})
        if turn == 0 and persona.opening:
            line = persona.opening
        else:
            line = (await chat(http, suite.caller_llm, history)).strip()
        if not line or persona.end_token in line:
            return
        history.append({"role": "assistant", "content": line})
        await caller.say(line, (await c.prepare(Say(line)))[1])
    await c.agent_turn()


def _driver(
    scenario: Scenario,
    suite: Suite,
    http: httpx.AsyncClient,
    hangs_up_within: float | None,
    failures: list[str],
) -> CallDriver:
    async def drive(control: CallControl) -> None:
        bed, amplitude = None, 0.0
        audio: list[bytes | None] = []
        try:
            audio = await _prepare_steps(control, scenario.steps)
            if scenario.noise is not None:
                bed, amplitude = await asyncio.to_thread(_noise_bed, scenario.noise, audio)
        except SoftphoneError as exc:
            failures.append(str(exc))
            return
        caller = _Caller(control, bed, amplitude)
        caller.start_noise()
        try:
            remaining = scenario.max_duration_s - control.elapsed_s()
            async with asyncio.timeout(max(1.0, remaining)):
                if scenario.persona is not None:
                    await _run_persona(caller, scenario.persona, suite, http)
                else:
                    await _run_steps(caller, scenario.steps, audio, suite.max_wait_s)
                if hangs_up_within is not None:
                    # give the agent its chance to end the call (a little beyond the bound,
                    # so a late hang-up is reported as late rather than as ours)
                    await control.wait_ended(hangs_up_within + 2 - control.elapsed_s())
        except TimeoutError:
            pass
        except LlmError as exc:
            failures.append(f"caller persona: {exc}")
        finally:
            await caller.stop()
            await control.caught_up()

    return drive


def _noise_bed(spec: Noise, audio: list[bytes | None]) -> tuple[np.ndarray, float]:
    levels = [noises.rms(pcm) for pcm in audio if pcm]
    speech = float(np.mean([x for x in levels if x > 0])) if any(levels) else 0.0
    return noises.noise(spec.color, 8.0), noises.amplitude_for(speech, spec.snr_db)


# ---- the server's side ------------------------------------------------------------------


def _body(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message(r: httpx.Response) -> str:
    error = _body(r).get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{r.status_code} {error['message']}"
    return f"{r.status_code} {r.text[:200]}"


async def _create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        r = await api.post(path, json=body)
    except httpx.HTTPError as exc:
        raise SetupError(f"cannot reach the API at {api.base_url}: {exc}") from exc
    if r.status_code not in (200, 201):
        raise SetupError(f"POST {path} failed: {_message(r)}")
    data = _body(r)
    inner = next((v for v in data.values() if isinstance(v, dict) and "id" in v), data)
    return inner


@dataclass
class _Created:
    agent_id: str | None = None
    number_id: str | None = None
    trunk_id: str | None = None


async def _set_up_agent(api: httpx.AsyncClient, suite: Suite) -> _Created:
    assert suite.agent is not None
    setup = suite.agent
    created = _Created()
    for byok in setup.byok:
        body = dict(byok)
        env = body.pop("api_key_env", None)
        if env:
            body["api_key"] = os.environ.get(str(env), "")
        await _create(api, "/byok", body)
    agent = await _create(api, "/agents", setup.definition)
    created.agent_id = str(agent["id"])
    number: dict[str, Any] = {
        "phone_number": setup.phone_number,
        "name": f"flireo test {created.agent_id}"[:60],
        "agent_id": created.agent_id,
    }
    if setup.sip_trunk is not None:
        trunk = await _create(api, "/sip-trunks", setup.sip_trunk)
        created.trunk_id = number["transfer_trunk_id"] = str(trunk["id"])
    created.number_id = str((await _create(api, "/numbers", number))["id"])
    return created


async def _tear_down(api: httpx.AsyncClient, created: _Created) -> None:
    for path, ident in (
        ("/numbers", created.number_id),
        ("/sip-trunks", created.trunk_id),
        ("/agents", created.agent_id),
    ):
        if ident:
            with contextlib.suppress(httpx.HTTPError):
                await api.delete(f"{path}/{quote(ident, safe='')}")


async def _find_record(
    api: httpx.AsyncClient, caller: str, since: datetime, timeout_s: float
) -> dict[str, Any] | None:
    """The call from ``caller`` created after ``since``, once it has ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    call_id: str | None = None
    while loop.time() < deadline:
        try:
            if call_id is None:
                r = await api.get("/calls", params={"start_date": since.isoformat(), "limit": 1000})
                for row in _body(r).get("calls") or []:
                    if row.get("caller_phone") == caller:
                        call_id = str(row["id"])
                        break
            if call_id is not None:
                r = await api.get(f"/calls/{quote(call_id, safe='')}")
                detail = _body(r)
                if detail.get("status") in _FINAL:
                    return detail
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    return None


# ---- the run ----------------------------------------------------------------------------


async def _run_scenario(
    scenario: Scenario,
    suite: Suite,
    options: RunOptions,
    api: httpx.AsyncClient | None,
    http: httpx.AsyncClient,
    default_target: str | None,
    voices: tuple[Synthesizer | None, Transcriber | None],
) -> ScenarioResult:
    started = time.monotonic()
    result = ScenarioResult(scenario.name)
    caller = scenario.caller or f"+1555{secrets.randbelow(10**7):07d}"
    target = scenario.call or default_target
    assert target is not None  # the suite's validation ensures it
    hangs_up = next(
        (e.agent_hangs_up.within_s for e in scenario.expect if e.agent_hangs_up is not None),
        None,
    )
    failures: list[str] = []
    log = io.StringIO()
    phone = Softphone(
        server=options.sip,
        from_number=caller,
        console=Console(file=log, width=200, color_system=None),
        api=api,
        tts=voices[0],
        stt=voices[1],
        quiet_s=suite.quiet_s,
        max_wait_s=suite.max_wait_s,
    )
    since = datetime.now(UTC) - timedelta(seconds=5)
    try:
        call: CallResult = await phone.call(
            target, driver=_driver(scenario, suite, http, hangs_up, failures)
        )
    except SoftphoneError as exc:
        result.error = f"cannot call: {exc}"
        result.duration_s = time.monotonic() - started
        return result
    result.transcript = log.getvalue()
    if not call.answered:
        result.error = f"the call failed: {call.reason}"
    elif failures:
        result.error = "; ".join(failures)
    else:
        record = None
        if api is not None:
            record = await _find_record(api, caller, since, options.record_timeout_s)
            if record is None:
                result.error = (
                    f"no ended call record from {caller} within {options.record_timeout_s:g} s"
                )
        if result.error is None:
            result.call_id = None if record is None else str(record.get("id"))
            result.checks = await check_all(
                scenario.expect, CallEvidence(call, record), http, suite.judge
            )
    result.duration_s = time.monotonic() - started
    return result


async def run_suite(
    suite: Suite,
    options: RunOptions,
    *,
    on_start: Callable[[Scenario], None] | None = None,
    on_done: Progress | None = None,
    tts: Synthesizer | None = None,
    stt: Transcriber | None = None,
) -> list[ScenarioResult]:
    """Run every scenario (at most ``options.concurrency`` calls at once), in suite order."""
    if tts is None:
        from flireo.providers.tts.local_piper import PiperTTS

        tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)  # a line sounds the same every time
    if stt is None:
        from flireo.providers.stt.local_whisper import WhisperSTT

        stt = WhisperSTT()
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
        api: httpx.AsyncClient | None = None
        if options.api_root is not None:
            api = await stack.enter_async_context(
                httpx.AsyncClient(base_url=options.api_root, headers=headers, timeout=30)
            )
        created = _Created()
        default_target: str | None = None
        if suite.agent is not None:
            if api is None:
                raise SetupError("the suite defines an agent: give --api-url and FLIREO_API_KEY")
            try:
                created = await _set_up_agent(api, suite)
            except SetupError:
                await _tear_down(api, created)
                raise
            default_target = suite.agent.phone_number
        gate = asyncio.Semaphore(max(1, options.concurrency))

        async def one(scenario: Scenario) -> ScenarioResult:
            async with gate:
                if on_start is not None:
                    on_start(scenario)
                done = await _run_scenario(
                    scenario, suite, options, api, http, default_target, (tts, stt)
                )
                if on_done is not None:
                    on_done(done)
                return done

        try:
            return list(await asyncio.gather(*(one(s) for s in suite.scenarios)))
        finally:
            if api is not None:
                await _tear_down(api, created)
