"""A bad suite file is refused with its line and field, exit code 2, before any call."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flireo.cli import app
from flireo.testing.suite import SuiteError, parse_suite

GOOD = """\
name: front desk
agent:
  phone_number: "+31850835037"
  definition: {name: Front desk}
scenarios:
  - name: hours
    steps:
      - say: What are your opening hours?
      - backchannel: mm-hmm
      - interrupt: wait, stop
        delay_s: 0.3
      - dtmf: "12#"
      - pause: 1
    noise: {color: brown, snr_db: 10}
    expect:
      - agent_says: nine
      - agent_says: {regex: "nine|9", source: heard}
      - tool_called: {name: book, arguments: {day: monday}}
      - transfer_attempted: true
      - agent_hangs_up: {within_s: 30}
      - latency: {max_ms: 3000, p50_ms: 1500}
"""


def test_a_good_suite_parses_with_its_shorthands() -> None:
    suite = parse_suite(GOOD)
    [scenario] = suite.scenarios
    assert [s.action for s in scenario.steps] == [
        "say",
        "backchannel",
        "interrupt",
        "dtmf",
        "pause",
    ]
    kinds = [e.kind for e in scenario.expect]
    assert kinds == [
        "agent_says",
        "agent_says",
        "tool_called",
        "transfer_attempted",
        "agent_hangs_up",
        "latency",
    ]
    assert scenario.expect[0].agent_says is not None
    assert scenario.expect[0].agent_says.contains == "nine"
    assert scenario.noise is not None
    assert scenario.noise.color == "brown"


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('      - dtmf: "12#"', '      - dtmf: "12x"'), 12, "steps.3.dtmf: DTMF digits are"),
        (("      - pause: 1", "      - pause: 1\n        say: hi"), 13, "exactly one of say"),
        (("      - transfer_attempted: true", "      - transferred: true"), 19, "expect.3"),
        (("{max_ms: 3000, p50_ms: 1500}", "{metric: first_audio_ms}"), 21, "at least one of"),
        (('{regex: "nine|9", source: heard}', '{regex: "(nine"}'), 17, "not a regular"),
        (("{color: brown, snr_db: 10}", "{color: purple}"), 14, "noise.color"),
    ],
)
def test_a_bad_field_is_named_with_its_line(
    change: tuple[str, str], line: int, message: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, "suite.yaml")
    assert f"suite.yaml:{line}: scenarios.0." in str(caught.value), str(caught.value)
    assert message in str(caught.value), str(caught.value)


def test_suite_level_mistakes() -> None:
    with pytest.raises(SuiteError, match=r"suite.yaml:3: not valid YAML"):
        parse_suite("scenarios:\n  - name: a\n  bad: [\n", "suite.yaml")
    with pytest.raises(SuiteError, match="a suite is a mapping"):
        parse_suite("- just a list\n", "suite.yaml")
    no_target = "scenarios:\n  - name: a\n    steps: [{say: hi}]\n"
    with pytest.raises(SuiteError, match="no `call:` target and no suite `agent:`"):
        parse_suite(no_target, "suite.yaml")
    judged = GOOD.replace("- agent_says: nine", "- agent_says: {judge: polite}")
    with pytest.raises(SuiteError, match="uses an LLM judge: set `judge:`"):
        parse_suite(judged, "suite.yaml")
    twice = GOOD + "  - name: hours\n    call: '+31201234567'\n"
    with pytest.raises(SuiteError, match="scenario names must be unique: hours"):
        parse_suite(twice, "suite.yaml")


def test_the_command_exits_2_on_a_bad_suite_or_arguments(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("within_s: 30", "within_s: -1"))
    runner = CliRunner()
    result = runner.invoke(app, ["test", str(bad)])
    assert result.exit_code == 2, result.output
    assert "Bad suite" in result.output
    assert f"{bad}:20: scenarios.0.expect.4.agent_hangs_up.within_s" in result.output
    missing = runner.invoke(app, ["test", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    both = runner.invoke(app, ["test", str(good), "--start-server", "--server", "h:5060"])
    assert both.exit_code == 2
    assert "not both" in both.output
    keyless = runner.invoke(app, ["test", str(good)], env={"FLIREO_API_KEY": None})
    assert keyless.exit_code == 2, keyless.output
    assert "set FLIREO_API_KEY" in keyless.output
    port = runner.invoke(
        app, ["test", str(good), "--server", "127.0.0.1:99999"], env={"FLIREO_API_KEY": "flk_x"}
    )
    assert port.exit_code == 2
    assert "bad port" in port.output


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("README.md", "## Test an agent in CI"), ("docs/agent-testing.md", "## The suite file")],
)
def test_the_documented_example_suites_are_valid(doc: str, heading: str) -> None:
    text = (ROOT / doc).read_text()
    section = text[text.index(heading) :]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    suite = parse_suite(example, doc)
    assert len(suite.scenarios) == 2
