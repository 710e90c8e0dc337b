from __future__ import annotations

from collections.abc import AsyncIterator

from flireo.providers.llm.sse import ServerSentEvent, SseDecoder, iter_sse


def decode(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SseDecoder()
    events = [e for line in lines if (e := decoder.decode(line)) is not None]
    last = decoder.flush()
    return [*events, last] if last is not None else events


def test_data_lines_of_one_event_are_joined_with_newlines() -> None:
    events = decode(['data: {"a":', "data: 1}", ""])
    assert events == [ServerSentEvent('{"a":\n1}')]


def test_comments_and_keepalives_produce_no_events() -> None:
    events = decode([": keep-alive", "", ": OPENROUTER PROCESSING", "data: x", ""])
    assert events == [ServerSentEvent("x")]


def test_event_name_and_id_are_kept_and_reset_between_events() -> None:
    events = decode(["event: message_start", "id: 7", "data: {}", "", "data: 2", ""])
    assert events == [
        ServerSentEvent("{}", "message_start", "7"),
        ServerSentEvent("2", "message", "7"),
    ]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert decode(["data:  two spaces", "data:none", ""]) == [ServerSentEvent(" two spaces\nnone")]


def test_event_without_final_blank_line_is_delivered_at_end_of_stream() -> None:
    assert decode(["data: [DONE]"]) == [ServerSentEvent("[DONE]")]


def test_event_name_without_data_is_not_an_event() -> None:
    assert decode(["event: ping", "", "data: x", ""]) == [ServerSentEvent("x")]


async def test_iter_sse_accepts_crlf_terminated_lines() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ["data: a\r\n", "\r\n", "data: b\r\n", "\r\n"]:
            yield line

    assert [e.data async for e in iter_sse(lines())] == ["a", "b"]
