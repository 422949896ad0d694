"""Cache statistics from the journal, like ``ccache -s`` or turbo's run summary (pure).

Every process that needs an artifact (a host at startup, ``build``,
``doctor``, the daemon on a new key) journals one ``hit`` (the cache had it)
or ``miss`` (it had to be built, here or elsewhere, or waited for); builders
journal ``start``, ``published`` (with the build's seconds), ``failed`` and
``cancelled``. :func:`summarize` counts them per project. Time saved is the
sum, over hits, of what building that key took when it was published: what
those hits would have cost without the cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProjectStats", "Stats", "render", "summarize"]

UNKNOWN = "(unknown project)"


@dataclass
class ProjectStats:
    """The counters of one project (or of all of them)."""

    hits: int = 0
    misses: int = 0
    builds: int = 0
    failures: int = 0
    cancelled: int = 0
    build_seconds: float = 0.0
    saved_seconds: float = 0.0

    @property
    def mean_build_seconds(self) -> float | None:
        """Mean seconds of a published build, None without builds."""
        return self.build_seconds / self.builds if self.builds else None

    @property
    def hit_rate(self) -> float | None:
        """Hits over lookups, None without lookups."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def add(self, other: ProjectStats) -> None:
        """Add ``other``'s counters to these."""
        self.hits += other.hits
        self.misses += other.misses
        self.builds += other.builds
        self.failures += other.failures
        self.cancelled += other.cancelled
        self.build_seconds += other.build_seconds
        self.saved_seconds += other.saved_seconds

    def to_json(self) -> dict[str, Any]:
        """The counters and the derived figures."""
        mean, rate = self.mean_build_seconds, self.hit_rate
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": None if rate is None else round(rate, 4),
            "builds": self.builds,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "mean_build_seconds": None if mean is None else round(mean, 3),
            "build_seconds": round(self.build_seconds, 3),
            "saved_seconds": round(self.saved_seconds, 3),
        }


@dataclass
class Stats:
    """Per-project counters and their total, over events since ``since``."""

    since: float | None
    projects: dict[str, ProjectStats] = field(default_factory=dict)

    @property
    def total(self) -> ProjectStats:
        """All projects together."""
        total = ProjectStats()
        for stats in self.projects.values():
            total.add(stats)
        return total

    def to_json(self) -> dict[str, Any]:
        """``{"since", "total", "projects": {root: counters}}``."""
        return {
            "since": self.since,
            "total": self.total.to_json(),
            "projects": {root: s.to_json() for root, s in sorted(self.projects.items())},
        }


def summarize(events: Iterable[Mapping[str, Any]], *, since: float | None = None) -> Stats:
    """Count journal ``events`` (oldest first) at or after ``since`` (epoch seconds)."""
    events = list(events)
    # Whole-journal facts: which project a key belongs to (older lines and
    # eviction lines name none) and what building a key cost.
    project_of: dict[str, str] = {}
    build_cost: dict[str, float] = {}
    for event in events:
        key = str(event.get("key", ""))
        if event.get("project"):
            project_of.setdefault(key, str(event["project"]))
        if event.get("event") == "published" and "seconds" in event:
            build_cost[key] = float(event["seconds"])
    stats = Stats(since=since)
    for event in events:
        if since is not None and float(event.get("time", 0)) < since:
            continue
        key = str(event.get("key", ""))
        root = str(event.get("project") or project_of.get(key, UNKNOWN))
        counters = stats.projects.setdefault(root, ProjectStats())
        kind = event.get("event")
        if kind == "hit":
            counters.hits += 1
            counters.saved_seconds += build_cost.get(key, 0.0)
        elif kind == "miss":
            counters.misses += 1
        elif kind == "published":
            counters.builds += 1
            counters.build_seconds += float(event.get("seconds", 0.0))
        elif kind == "failed":
            counters.failures += 1
        elif kind == "cancelled":
            counters.cancelled += 1
    # Projects seen only through events that count nothing (start, evicted).
    stats.projects = {
        root: s for root, s in stats.projects.items() if s.to_json() != ProjectStats().to_json()
    }
    return stats


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render(stats: Stats) -> str:
    """The table for a person: one row per project, then the total."""
    header = (
        f"{'HITS':>6} {'MISSES':>6} {'HIT RATE':>8} {'BUILDS':>6} {'FAILED':>6} "
        f"{'MEAN BUILD':>10} {'SAVED':>9}  PROJECT"
    )
    rows = [header]
    for root, s in sorted(stats.projects.items()):
        rows.append(_row(s, root))
    rows.append(_row(stats.total, "total"))
    return "\n".join(rows) + "\n"


def _row(s: ProjectStats, label: str) -> str:
    return (
        f"{s.hits:>6} {s.misses:>6} {_rate(s.hit_rate):>8} {s.builds:>6} {s.failures:>6} "
        f"{_seconds(s.mean_build_seconds):>10} {_seconds(s.saved_seconds):>9}  {label}"
    )
