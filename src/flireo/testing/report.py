"""The results of a run: a rich table and JUnit XML (one testcase per scenario)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.table import Table
from rich.text import Text

from flireo.testing.runner import ScenarioResult

__all__ = ["results_table", "write_junit"]


def results_table(results: list[ScenarioResult]) -> Table:
    table = Table("scenario", "result", "check", "detail", "time", title="flireo test")
    for r in results:
        mark = Text("PASS", style="bold green") if r.passed else Text("FAIL", style="bold red")
        seconds = f"{r.duration_s:.1f} s"
        if r.error is not None:
            table.add_row(r.name, mark, Text("(run)"), Text(r.error, style="red"), seconds)
            continue
        if not r.checks:
            table.add_row(r.name, mark, Text("(no expectations)"), Text(""), seconds)
        for i, check in enumerate(r.checks):
            table.add_row(
                r.name if i == 0 else "",
                mark if i == 0 else Text(""),
                Text(
                    ("✓ " if check.passed else "✗ ") + check.name,
                    style="green" if check.passed else "red",
                ),
                Text(check.detail),
                seconds if i == 0 else "",
            )
    return table


def junit_xml(results: list[ScenarioResult], suite_name: str) -> ET.ElementTree:
    failed = sum(1 for r in results if r.error is None and not r.passed)
    errors = sum(1 for r in results if r.error is not None)
    root = ET.Element(
        "testsuites",
        name=suite_name,
        tests=str(len(results)),
        failures=str(failed),
        errors=str(errors),
        time=f"{sum(r.duration_s for r in results):.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(failed),
        errors=str(errors),
        time=f"{sum(r.duration_s for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=suite_name, name=r.name, time=f"{r.duration_s:.3f}"
        )
        if r.error is not None:
            ET.SubElement(case, "error", message=r.error).text = r.error
        else:
            bad = [c for c in r.checks if not c.passed]
            if bad:
                message = "; ".join(f"{c.name}: {c.detail}" for c in bad)
                ET.SubElement(case, "failure", message=message).text = "\n".join(
                    f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in r.checks
                )
        out = "\n".join(filter(None, [f"call {r.call_id}" if r.call_id else "", r.transcript]))
        if out:
            ET.SubElement(case, "system-out").text = out
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: list[ScenarioResult], suite_name: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(results, suite_name).write(path, encoding="utf-8", xml_declaration=True)
