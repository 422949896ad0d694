"""Build logs that point at the user's code (pure): clean, tail, user frame, phases."""

from __future__ import annotations

from pathlib import Path

from reflex_buildd.buildlog import PhaseTracker, clean, error_tail, phase_of, user_frame

SNAPSHOT = "/cache/v1/tmp/build-e3f5af5369b1-14679-714f1e15-cad1174b/src"
PROJECT = "/home/me/proj"

LOG = (
    "\x1b[1m\x1b[32m──── Initializing proj ────\x1b[0m\n"
    "Compiling: ━━━━━  10% 2/21\rCompiling: ━━━━━━━━━━ 100% 21/21 0:00:01\n"
    + "\n".join(f"noise line {i}" for i in range(60))
    + "\nTraceback (most recent call last):\n"
    + "".join(
        f'  File "/venv/lib/python3.11/site-packages/reflex/m{i}.py", line {i}, in f{i}\n'
        f"    call_{i}()\n"
        for i in range(30)
    )
    + f'  File "{SNAPSHOT}/proj/pages.py", line 187, in about\n'
    + '    raise ValueError("boom")\n'
    + "\x1b[31mValueError: boom\x1b[0m\n"
    + "Happened while evaluating page 'about'\n"
)


def test_clean_strips_terminal_codes_and_maps_snapshot_paths() -> None:
    text = clean(LOG, snapshot=SNAPSHOT, project=PROJECT)
    assert "\x1b" not in text and "\r" not in text
    assert "/v1/tmp/build-" not in text
    assert f'File "{PROJECT}/proj/pages.py", line 187, in about' in text
    # A redrawn progress bar keeps its last state only.
    assert "Compiling: ━━━━━━━━━━ 100% 21/21 0:00:01" in text and "10% 2/21" not in text


def test_tail_starts_at_the_traceback_header() -> None:
    tail = error_tail(clean(LOG, snapshot=SNAPSHOT, project=PROJECT), 40)
    lines = tail.splitlines()
    # 40 lines would start mid-traceback; the header is kept instead.
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2:] == ["ValueError: boom", "Happened while evaluating page 'about'"]
    assert "noise line 59" not in tail


def test_a_very_long_traceback_keeps_header_and_end() -> None:
    deep = "Traceback (most recent call last):\n" + "".join(
        f'  File "/x/m{i}.py", line {i}, in f\n    g()\n' for i in range(200)
    )
    tail = error_tail(deep + "RecursionError: too deep\n", 40).splitlines()
    assert tail[0] == "Traceback (most recent call last):"
    assert "lines of the traceback left out" in tail[1]
    assert tail[-1] == "RecursionError: too deep"
    assert len(tail) <= 80


def test_no_traceback_means_the_last_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    assert error_tail(text, 10).splitlines() == [f"line {i}" for i in range(90, 100)]


def test_user_frame_names_the_innermost_project_file() -> None:
    frame = user_frame(clean(LOG, snapshot=SNAPSHOT, project=PROJECT), Path(PROJECT))
    assert frame is not None
    assert (frame.file, frame.line, frame.function) == ("proj/pages.py", 187, "about")
    assert str(frame) == "proj/pages.py, line 187, in about: ValueError: boom"
    # Nothing of the project in the traceback: no frame to name.
    assert user_frame(clean(LOG), Path("/elsewhere")) is None


def test_phases_of_reflex_export_output(tmp_path: Path) -> None:
    assert phase_of("──── Initializing proj ────") == "initializing the web directory"
    assert phase_of("Creating Production Build:  ━━━ 100% 4/4") == "bundling the frontend (vite)"
    assert phase_of("Warning: Your version of Node.js is out of date.") is None
    log = tmp_path / "build.log"
    tracker = PhaseTracker(log)
    assert tracker.poll() is None  # no log yet
    log.write_text("\x1b[1m──── Initializing proj ────\x1b[0m\nCompil")
    assert tracker.poll() == "initializing the web directory"
    with log.open("a") as out:
        out.write("ing: ━━ 10%\r")  # the line completes across two reads
    assert tracker.poll() == "compiling pages"
    assert tracker.poll() is None
