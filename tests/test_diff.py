"""The one-line summary hosts print when their key differs from the daemon's."""

from __future__ import annotations

from reflex_buildd_client.keys.diff import diff_inputs
from reflex_buildd_client.keys.schema import KeyInputs


def test_summary_names_the_telling_differences_first() -> None:
    daemon = KeyInputs(
        files={"a.py": "1", "b.py": "2"},
        versions={"reflex": "0.10.1"},
        js_runtime="bun@1.4.4",
        env={"REFLEX_X": "d1", "VITE_Y": "d2"},
    )
    host = KeyInputs(
        files={"a.py": "1", "b.py": "3", "c.py": "4"},
        versions={"reflex": "0.10.2"},
        js_runtime="node@24.1.0",
        env={"REFLEX_X": "d9", "VITE_Z": "d3"},
    )
    summary = diff_inputs(daemon, host).summary()
    parts = summary.split("; ")
    assert parts[:3] == [
        "environment variable REFLEX_X differs",
        "environment variable VITE_Y is set there only",
        "environment variable VITE_Z is set here only",
    ]
    assert "version of reflex: 0.10.1 there, 0.10.2 here" in parts
    assert "JS runtime: bun@1.4.4 there, node@24.1.0 here" in parts
    assert "file added: c.py" in parts
    assert summary.endswith("; and 1 more")  # file changed: b.py, past the limit of 6


def test_no_difference() -> None:
    same = KeyInputs(files={"a.py": "1"})
    assert diff_inputs(same, same).summary() == "no difference in inputs"
