"""gc's decision as a pure function, and the size/age units (no I/O)."""

from __future__ import annotations

import pytest

from reflex_buildd.gc import Candidate, GcPolicy, exclusive_sizes, plan_gc, unique_size
from reflex_buildd_client.units import format_size, parse_age, parse_size

NOW = 1_000_000.0


def _c(key: str, used: float, files: dict[str, int], pinned: str = "") -> Candidate:
    return Candidate(key=key, last_used=used, files=files, pinned=pinned)


def test_evicts_least_recently_used_first_until_under_the_cap() -> None:
    cands = [
        _c("new", NOW - 10, {"n": 100}),
        _c("old", NOW - 300, {"o": 100}),
        _c("mid", NOW - 100, {"m": 100}),
    ]
    plan = plan_gc(cands, GcPolicy(max_size=150), now=NOW)
    assert plan.evict == ("old", "mid")
    assert (plan.size_before, plan.size_after) == (300, 100)
    assert plan_gc(cands, GcPolicy(max_size=300), now=NOW).evict == ()


def test_pinned_artifacts_are_never_evicted_even_over_the_cap() -> None:
    cands = [
        _c("old-leased", NOW - 500, {"a": 100}, pinned="leased by 1 live host(s)"),
        _c("mid", NOW - 100, {"b": 100}),
        _c("new", NOW - 1, {"c": 100}),
    ]
    plan = plan_gc(cands, GcPolicy(max_size=0), now=NOW)
    assert plan.evict == ("mid", "new")
    assert plan.kept_pinned == ("old-leased",)
    assert plan.size_after == 100


def test_shared_inodes_count_once_and_free_only_with_their_last_holder() -> None:
    # Two builds of one project share a big vendor chunk.
    a = _c("a", NOW - 200, {"vendor": 1000, "a-page": 10})
    b = _c("b", NOW - 100, {"vendor": 1000, "b-page": 10})
    assert unique_size([a, b]) == 1020
    assert exclusive_sizes([a, b]) == {"a": 10, "b": 10}
    # Evicting a frees 10 bytes only: a cap of 1005 needs b to go as well.
    plan = plan_gc([a, b], GcPolicy(max_size=1005), now=NOW)
    assert plan.evict == ("a", "b") and plan.size_after == 0
    plan = plan_gc([a, b], GcPolicy(max_size=1015), now=NOW)
    assert plan.evict == ("a",) and plan.size_after == 1010


def test_max_age_evicts_by_last_use_without_a_cap() -> None:
    cands = [_c("stale", NOW - 90_000, {"s": 1}), _c("fresh", NOW - 60, {"f": 1})]
    plan = plan_gc(cands, GcPolicy(max_age=86_400), now=NOW)
    assert plan.evict == ("stale",)
    assert plan.reasons["stale"] == "older than max age"
    assert plan_gc(cands, GcPolicy(), now=NOW).evict == ()


def test_ties_in_last_use_break_by_key_so_plans_are_stable() -> None:
    cands = [_c("b", NOW, {"b": 1}), _c("a", NOW, {"a": 1})]
    assert plan_gc(cands, GcPolicy(max_size=1), now=NOW).evict == ("a",)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("500K", 500 * 1024),
        ("2G", 2 * 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("3GB", 3 * 10**9),
        ("10 mb", 10 * 10**6),
        ("0", 0),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
    ],
)
def test_parse_age(text: str, age: float) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("bad", ["", "G", "-1G", "1.2.3", "12 parsecs", "1e9"])
def test_bad_sizes_and_ages_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)
    with pytest.raises(ValueError):
        parse_age(bad)


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 1024**3) == "3.0 GiB"
