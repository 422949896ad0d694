"""``reflex-buildd stats``: the journal's hits, misses, builds and failures, counted exactly."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import SHOWCASE, run_cli
from reflex_buildd.stats import render, summarize


def _event(event: str, key: str, at: float, **fields: object) -> dict[str, object]:
    return {"event": event, "key": key, "time": at, **fields}


def test_summarize_counts_each_kind_per_project() -> None:
    a, b = "/srv/a", "/srv/b"
    events = [
        _event("miss", "k1", 1, project=a),
        _event("start", "k1", 1, project=a),
        _event("published", "k1", 5, seconds=4.0),  # no project: known from its start
        _event("hit", "k1", 6, project=a),
        _event("hit", "k1", 7, project=a),
        _event("miss", "k2", 8, project=b),
        _event("start", "k2", 8, project=b),
        _event("failed", "k2", 9, project=b),
        _event("miss", "k3", 10, project=a),
        _event("cancelled", "k3", 11, project=a),
        _event("evicted", "k1", 12),
    ]
    stats = summarize(events)
    one, two = stats.projects[a], stats.projects[b]
    assert (one.hits, one.misses, one.builds, one.failures, one.cancelled) == (2, 2, 1, 0, 1)
    assert one.mean_build_seconds == 4.0 and one.saved_seconds == 8.0
    assert (two.hits, two.misses, two.builds, two.failures) == (0, 1, 0, 1)
    assert stats.total.to_json()["hit_rate"] == round(2 / 5, 4)
    # --since: only later events count; what a key cost is still known.
    later = summarize(events, since=6.5)
    assert later.projects[a].hits == 1 and later.projects[a].saved_seconds == 4.0
    assert later.projects[a].builds == 0 and later.projects[b].failures == 1
    text = render(stats)
    assert text.splitlines()[-1].split()[:6] == ["2", "3", "40%", "1", "1", "4.0s"]


@pytest.mark.slow
def test_stats_of_a_scripted_sequence(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = tmp_path / "good"
    shutil.copytree(SHOWCASE, good, ignore=shutil.ignore_patterns("__pycache__"))
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    page = broken / "showcase" / "showcase.py"
    page.write_text(page.read_text() + "\nraise RuntimeError('broken on purpose')\n")

    def cli(*args: str, code: int = 0) -> str:
        result = run_cli(*args, cache_dir=cache)
        assert result.returncode == code, result.stdout + result.stderr
        return result.stdout

    cli("build", str(good))  # miss, one build
    cli("build", str(good))  # hit
    cli("key", str(good))  # looks nothing up
    cli("doctor", str(good))  # hit
    cli("build", str(broken), code=1)  # miss, a failure
    cli("build", str(broken), code=1)  # miss again (a retry), a second failure

    data = json.loads(cli("stats", "--json"))
    built = data["projects"][str(good)]
    assert {k: built[k] for k in ("hits", "misses", "builds", "failures")} == {
        "hits": 2,
        "misses": 1,
        "builds": 1,
        "failures": 0,
    }
    assert built["saved_seconds"] == pytest.approx(2 * built["mean_build_seconds"], abs=0.01)
    failed = data["projects"][str(broken)]
    assert {k: failed[k] for k in ("hits", "misses", "builds", "failures")} == {
        "hits": 0,
        "misses": 2,
        "builds": 0,
        "failures": 2,
    }
    assert data["total"]["hits"] == 2 and data["total"]["misses"] == 3
    # Nothing happened in the future; the table names each project.
    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 3600))
    future = json.loads(cli("stats", "--json", "--since", later))
    assert future["total"]["hits"] == future["total"]["misses"] == 0 and not future["projects"]
    assert json.loads(cli("stats", "--json", "--since", "1h"))["total"] == data["total"]
    table = cli("stats")
    assert str(good) in table and str(broken) in table
    bad = run_cli("stats", "--since", "yesterday-ish", cache_dir=cache)
    assert bad.returncode == 2 and "expected an age" in bad.stderr
