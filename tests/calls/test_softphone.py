"""``flireo call``: our softphone calls an agent over real SIP/RTP on loopback,
speaks a Piper-made line and prints what the agent says, transcribed live."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import structlog
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from flireo.cli import app
from flireo.services.container import Services
from flireo.softphone import AgentTurns, Say, Softphone, SoftphoneError, Wav, parse_server
from flireo.store.tables import Call
from tests.calls.phone import NUMBER, agent_with_number, gateway
from tests.fakes.llm_script import Reply
from tests.fakes.openai_chat import FakeOpenAI
from tests.speech import words

UNKNOWN = "+31201234567"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the API suite covers PostgreSQL; these calls are about SIP/RTP


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


async def calls_in_store(services: Services) -> list[Call]:
    async with services.db.read() as s:
        return list((await s.execute(select(Call))).scalars())


async def the_finished_call(services: Services) -> Call:
    for _ in range(200):
        calls = await calls_in_store(services)
        if calls and calls[0].status in ("ended", "failed", "rejected"):
            assert len(calls) == 1
            return calls[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the call record never ended")


def voiced(track: np.ndarray) -> np.ndarray:
    """Per 20 ms frame of a 16 kHz track: is there voice in it (RMS above a whisper)?"""
    frames = track[: track.size - track.size % 320].astype(np.float64).reshape(-1, 320)
    return np.sqrt((frames**2).mean(axis=1)) > 300


async def test_softphone_asks_the_agent_and_prints_the_live_transcript(
    services: Services, api: httpx.AsyncClient, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    await agent_with_number(api, fake_openai)
    fake_openai.enqueue(Reply.say("We are open from nine to five."))
    screen, out = console()
    recording = tmp_path / "call.wav"
    async with gateway(services) as gw:
        phone = Softphone(
            server=("127.0.0.1", gw.endpoint.port),
            from_number="+31612345678",
            console=screen,
            record=recording,
        )
        result = await phone.call(NUMBER, [Say("What are your opening hours?")])
        call = await the_finished_call(services)

    assert (result.answered, result.status, result.exit_code) == (True, 200, 0)
    assert result.hung_up_by == "you"
    # the greeting, then our question, then the answer: in the order they were spoken
    speakers = [line.speaker for line in result.transcript]
    assert speakers[0] == "agent", speakers
    assert speakers[-1] == "agent", speakers
    assert speakers.count("you") == 1, speakers
    ours = speakers.index("you")
    before = words(" ".join(x.text for x in result.transcript[:ours]))
    after = words(" ".join(x.text for x in result.transcript[ours + 1 :]))
    # the agent's Piper voice varies from call to call: its content words must come through
    assert {"hello", "this", "anna"} <= set(before), before
    assert {"open", "nine", "five"} <= set(after), after
    assert result.said("you") == ["What are your opening hours?"]
    printed = out.getvalue()
    assert "You: What are your opening hours?" in printed
    assert printed.count("Agent: ") == speakers.count("agent")
    # the platform's side: the call came from us, heard the question, ended by our BYE
    assert (call.status, call.ended_reason, call.direction) == (
        "ended",
        "customer-ended-call",
        "inbound",
    )
    assert call.caller_phone == "+31612345678"
    user_said = [m["content"] for m in call.messages if m["role"] == "user"]
    assert words(" ".join(user_said)) == words("What are your opening hours?")
    # the recording: us on the left, the agent on the right, as long as the call
    with wave.open(str(recording)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16_000)
        seconds = w.getnframes() / 16_000
        stereo = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert abs(seconds - result.duration_s) < 2.0, (seconds, result.duration_s)
    you, agent = voiced(stereo[:, 0]), voiced(stereo[:, 1])
    assert 0.8 < you.sum() * 0.02 < 3.0  # the question only, not the agent's voice
    assert agent.sum() * 0.02 > 1.5  # greeting and answer
    assert (you & agent).sum() * 0.02 < 0.2  # we spoke in turns


async def test_the_softphone_hangs_up_when_the_agent_does(
    services: Services, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await agent_with_number(api, fake_openai)
    screen, out = console()
    async with gateway(services) as gw:
        # no lines, and no hang-up of our own before a minute has passed
        phone = Softphone(server=("127.0.0.1", gw.endpoint.port), console=screen, hangup_after_s=60)
        calling = asyncio.create_task(phone.call(NUMBER))
        for _ in range(400):  # the greeting has been transcribed
            if "Agent:" in out.getvalue() or calling.done():
                break
            await asyncio.sleep(0.05)
        (call,) = await calls_in_store(services)
        r = await api.post(
            f"/calls/{call.id}/control",
            json={"type": "end-call", "message": "Thank you for calling."},
        )
        assert r.status_code == 200, r.text
        result = await asyncio.wait_for(calling, 30)
        call = await the_finished_call(services)
    assert (result.answered, result.exit_code, result.hung_up_by) == (True, 0, "agent")
    assert result.duration_s < 30
    heard = words(" ".join(result.said("agent")))
    assert {"hello", "thank", "calling"} <= set(heard), heard
    assert "The agent hung up after" in out.getvalue()
    assert (call.status, call.ended_reason) == ("ended", "manually-ended")


async def test_calling_a_number_the_server_does_not_have_fails_with_404(
    services: Services, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    await agent_with_number(api, fake_openai)
    screen, out = console()
    async with gateway(services) as gw:
        # by name: the softphone resolves it to the address the gateway listens on
        phone = Softphone(server=("localhost", gw.endpoint.port), console=screen)
        result = await phone.call(UNKNOWN, [Say("Hello?")])
    assert (result.answered, result.status, result.exit_code) == (False, 404, 1)
    assert result.transcript == []
    assert "Call failed: 404 Not Found: no such number on the server" in out.getvalue()
    assert await calls_in_store(services) == []


async def test_nobody_listening_fails_fast_with_a_hint(services: Services) -> None:
    async with gateway(services) as gw:
        port = gw.endpoint.port  # a port nobody listens on once the gateway stops
    screen, out = console()
    phone = Softphone(server=("127.0.0.1", port), console=screen, connect_timeout_s=1.0)
    result = await phone.call(NUMBER)
    assert (result.answered, result.status, result.exit_code) == (False, None, 1)
    assert "is `flireo serve` running" in out.getvalue()


async def test_an_agent_id_is_called_on_its_first_number(
    services: Services, api: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    agent_id, _ = await agent_with_number(api, fake_openai)
    assert await Softphone(api=api).resolve(agent_id) == NUMBER
    assert await Softphone().resolve("+31 85 083 5037") == NUMBER
    with pytest.raises(SoftphoneError, match="no agent agt_nope"):
        await Softphone(api=api).resolve("agt_nope")
    r = await api.post("/agents", json={"name": "No number yet"})
    lonely = r.json()["agent"]["id"]
    with pytest.raises(SoftphoneError, match="has no phone number"):
        await Softphone(api=api).resolve(lonely)
    with pytest.raises(SoftphoneError, match="FLIREO_API_KEY"):
        await Softphone().resolve(agent_id)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``flireo call`` configures structlog for the process; put it back afterwards."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


async def test_flireo_call_command_exits_non_zero_on_failures(
    services: Services, restore_logging: None, tmp_path: Path
) -> None:
    question = tone_wav(tmp_path / "question.wav", rate=8_000, channels=1, seconds=0.5)
    runner = CliRunner()
    async with gateway(services) as gw:
        server = f"127.0.0.1:{gw.endpoint.port}"
        # the command runs its own event loop: in a thread, while the gateway runs on ours
        args = ["call", UNKNOWN, "--server", server, "--say", "Hi", "--wav", str(question)]
        unknown = await asyncio.to_thread(runner.invoke, app, args)
        by_id = await asyncio.to_thread(
            runner.invoke,
            app,
            ["call", "agt_123", "--server", server],
            env={"FLIREO_API_KEY": None},
        )
    assert unknown.exit_code == 1, unknown.output
    assert "404 Not Found" in unknown.output
    assert by_id.exit_code == 2, by_id.output
    assert "FLIREO_API_KEY" in by_id.output
    bad = runner.invoke(app, ["call", NUMBER, "--server", "127.0.0.1:99999"])
    assert bad.exit_code == 2
    assert "bad port" in bad.output


def test_the_agent_has_answered_once_it_spoke_and_went_quiet() -> None:
    turns = AgentTurns()
    mark = turns.position_ms
    turns.started()
    turns.position_ms = 1500
    assert not turns.answered_since(mark, 1000)  # still speaking
    turns.ended(1600)
    turns.position_ms = 2100
    assert not turns.answered_since(mark, 1000)  # quiet for only 0.5 s
    turns.position_ms = 2600
    assert turns.answered_since(mark, 1000)
    assert not turns.answered_since(2600, 1000)  # nothing said since a later mark


def tone_wav(path: Path, *, rate: int, channels: int, seconds: float, width: int = 2) -> Path:
    """A 440 Hz tone at half scale, the same in every channel."""
    t = np.arange(round(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    samples = (32767 * tone).astype("<i2")
    if width == 1:  # 8-bit WAV samples are unsigned
        samples = (128 + 127 * tone).astype(np.uint8)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).tobytes())
    return path


@pytest.mark.parametrize(("rate", "channels", "width"), [(44_100, 2, 2), (8_000, 1, 1)])
async def test_a_wav_line_is_read_at_any_rate_as_16_khz_mono(
    tmp_path: Path, rate: int, channels: int, width: int
) -> None:
    path = tone_wav(tmp_path / "line.wav", rate=rate, channels=channels, seconds=1.5, width=width)
    label, pcm = await Softphone().prepare(Wav(path))
    assert label == "[line.wav]"
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    assert abs(samples.size - 24_000) < 50  # 1.5 s at 16 kHz
    assert 0.3 < np.sqrt((samples**2).mean()) / 32768 < 0.4  # a half-scale sine: RMS 0.354
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(SoftphoneError, match="expected a PCM WAV"):
        await Softphone().prepare(Wav(tmp_path / "notes.wav"))


def test_server_addresses() -> None:
    assert parse_server("10.0.0.5:5070") == ("10.0.0.5", 5070)
    assert parse_server("pbx.example.com") == ("pbx.example.com", 5060)
    assert parse_server("[::1]:5062") == ("::1", 5062)
    with pytest.raises(SoftphoneError):
        parse_server(":5060")
