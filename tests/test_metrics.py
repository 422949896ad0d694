"""Prometheus metrics of a daemon and of a two-worker host, scraped after a scripted sequence.

The sequence: the daemon (``watch --metrics``) finds its key nowhere (a miss,
in the local cache and in the remote) and builds it (a build); a host with two
uvicorn workers starts on that artifact (two hits, one per worker, summed by
prometheus_client's multi-process mode) and serves three responses; an edit
gives the daemon a new key whose remote artifact is signed by a key it does
not trust (a refused pull). Each endpoint then shows exactly those counts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import SHOWCASE, free_port, run_cli, run_host, stop_process, tool_env, wait_for
from reflex_buildd_client.cache.store import Cache
from reflex_buildd_client.remote.bucket import RemoteStore, manifest_object, remote_settings
from reflex_buildd_client.remote.envelope import seal
from reflex_buildd_client.remote.keyfiles import generate_key_pair
from reflex_buildd_client.remote.signing import Trust

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(url: str) -> dict[str, float]:
    """``name{labels}`` -> value of every reflex_buildd sample."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:  # say which, and what it answered
        raise AssertionError(f"{url}: {exc.code} {exc.read()[:2000]!r}") from None
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if (found := SAMPLE.match(line)) and found["name"].startswith("reflex_buildd_"):
            labels = ",".join(sorted((found["labels"] or "").split(","))) if found["labels"] else ""
            samples[f"{found['name']}{{{labels}}}" if labels else found["name"]] = float(
                found["value"]
            )
    return samples


def counts(samples: dict[str, float]) -> dict[str, float]:
    """The non-zero counters (histogram counts included, bucket and sum lines left out)."""
    return {
        name: value
        for name, value in samples.items()
        if value and not re.search(r"_(bucket|sum|created)\b", name.split("{")[0])
    }


def test_scrape_both_endpoints_after_a_scripted_sequence(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.env().items():  # this process plants an object too
        monkeypatch.setenv(name, value)
    project, cache = tmp_path / "proj", tmp_path / "cache"
    shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
    untrusted, trusted = (generate_key_pair(tmp_path / n) for n in ("untrusted", "trusted"))
    url = s3.url(f"metrics-{time.monotonic_ns()}")
    # The edit to come, keyed in advance on a copy: its remote manifest is signed
    # by a key the daemon does not trust.
    edited = tmp_path / "edited" / "proj"
    shutil.copytree(project, edited)
    page = Path("showcase") / "showcase.py"
    (edited / page).write_text((edited / page).read_text() + "\n# edited\n")
    keyed = run_cli("key", str(edited), cache_dir=cache)
    assert keyed.returncode == 0, keyed.stderr
    new_key = keyed.stdout.strip()

    port = free_port()
    log = tmp_path / "daemon.log"
    env = {**s3.env(), "REFLEX_BUILDD_REMOTE": url}
    env["REFLEX_BUILDD_TRUSTED_KEYS"] = trusted.source + ".pub"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [
                *(sys.executable, "-m", "reflex_buildd", "watch", str(project)),
                *("--cache-dir", str(cache), "--metrics", f"127.0.0.1:{port}"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(**env),
            cwd=tmp_path,
        )
    try:
        daemon_url = f"http://127.0.0.1:{port}/metrics"
        # A miss (local and remote), then a build.
        wait_for(
            lambda: counts(scrape_or_empty(daemon_url)).get(
                'reflex_buildd_builds_total{outcome="published"}'
            ),
            timeout=300,
            what=f"the daemon's build:\n{log.read_text()}",
            interval=0.5,
        )
        old_key = next(p.name for p in (cache / "v1" / "artifacts").iterdir())
        artifact = Cache(cache).open(old_key)
        assert artifact is not None

        # Two hits: a host with two workers, each starting on the artifact.
        (tmp_path / "run").mkdir(mode=0o700)  # XDG_RUNTIME_DIR exists, private
        with run_host(
            "tests.hosts.metrics_host:app",
            cache_dir=cache,
            log_dir=tmp_path,
            extra_args=("--workers", "2"),
            timeout=180,
            MOUNT_PROJECT=str(project),
            REFLEX_BUILDD_POLICY="fail",
            REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
            REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
            XDG_RUNTIME_DIR=str(tmp_path / "run"),
        ) as host:
            # Both workers started: each has counted its hit.
            wait_for(
                lambda: (
                    counts(scrape(host.url + "/metrics/")).get(
                        'reflex_buildd_artifact_lookups_total{result="hit"}'
                    )
                    == 2
                ),
                timeout=120,
                what="both workers' hits",
            )
            for encoding in ("identity", "identity", "gzip"):
                request = urllib.request.Request(
                    host.url + "/admin/", headers={"Accept-Encoding": encoding}
                )
                with urllib.request.urlopen(request, timeout=10) as resp:
                    assert resp.status == 200
            expected = {
                'reflex_buildd_artifact_lookups_total{result="hit"}': 2,
                'reflex_buildd_served_responses_total{encoding="identity",status="200"}': 2,
                'reflex_buildd_served_responses_total{encoding="gzip",status="200"}': 1,
            }
            # The worker that answers a scrape counts its own responses exactly;
            # the other one's tallies reach the shared files within a second.
            seen: list[dict[str, float]] = []
            wait_for(
                lambda: seen.append(counts(scrape(host.url + "/metrics/"))) or seen[-1] == expected,
                timeout=10,
                what=f"the served responses: {seen[-1:]}",
            )
            time.sleep(2.5)  # and nothing more arrives: exactly those counts
            assert counts(scrape(host.url + "/metrics/")) == expected

        # A refused pull: the new key's remote manifest is signed by an untrusted key.
        planted = remote_settings(url, allow_http=True)
        assert planted is not None
        forged = seal(artifact.manifest, Trust(signer=untrusted), "main")
        RemoteStore(planted).put_new(manifest_object(new_key), forged)
        (project / page).write_text((project / page).read_text() + "\n# edited\n")
        wait_for(
            lambda: counts(scrape(daemon_url)).get(
                'reflex_buildd_remote_refusals_total{reason="untrusted-signer"}'
            ),
            timeout=120,
            what=f"the refused pull:\n{log.read_text()}",
        )
        daemon_counts = counts(scrape(daemon_url))
    finally:
        stop_process(daemon)
    assert daemon_counts == {
        'reflex_buildd_artifact_lookups_total{result="miss"}': 1,
        'reflex_buildd_builds_total{outcome="published"}': 1,
        "reflex_buildd_build_seconds_count": 1,
        'reflex_buildd_remote_pulls_total{result="miss"}': 1,
        'reflex_buildd_remote_pulls_total{result="refused"}': 1,
        'reflex_buildd_remote_refusals_total{reason="untrusted-signer"}': 1,
    }, daemon_counts
    assert "builds are not pushed: this machine holds only public keys" in log.read_text()


def scrape_or_empty(url: str) -> dict[str, float]:
    try:
        return scrape(url)
    except OSError:
        return {}


def test_a_host_without_metrics_never_imports_prometheus_client(tmp_path: Path) -> None:
    code = (
        "import sys, reflex_buildd_client as c; from reflex_buildd_client import mount;"
        "from reflex_buildd_client.cache import status; from reflex_buildd_client.serve import http;"
        "status.append_journal(__import__('reflex_buildd_client.cache.store', fromlist=['Cache'])"
        f".Cache({str(tmp_path)!r}), 'hit', 'k'); c.ReflexMount;"
        "assert http.count_served is None;"
        "print('prometheus_client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_our_metrics_directory_must_be_private(tmp_path: Path) -> None:
    import os

    from reflex_buildd_client.errors import ReflexBuilddError
    from reflex_buildd_client.exposition import multiprocess_dir
    from reflex_buildd_client.settings import Settings

    settings = Settings.load(cache_dir=tmp_path / "c", environ={"XDG_RUNTIME_DIR": str(tmp_path)})
    made = multiprocess_dir(settings)
    assert made.is_relative_to(tmp_path / f"reflex-buildd-{os.getuid()}" / "metrics")
    assert made.stat().st_mode & 0o777 == 0o700
    # A server that is gone leaves a directory: the next one removes it.
    gone = made.parent / "999999999-1"
    gone.mkdir()
    assert multiprocess_dir(settings) == made and not gone.exists()
    (made.parent).chmod(0o755)  # readable by others: refused, never used
    with pytest.raises(ReflexBuilddError, match="not a directory private to this user"):
        multiprocess_dir(settings)
    # A name planted where the runtime directory goes (another user's link to a directory
    # they control): refused before anything is made through it.
    planted = tmp_path / "planted"
    (planted / "elsewhere").mkdir(parents=True)
    (planted / f"reflex-buildd-{os.getuid()}").symlink_to(planted / "elsewhere")
    there = Settings.load(cache_dir=tmp_path / "c", environ={"XDG_RUNTIME_DIR": str(planted)})
    with pytest.raises(ReflexBuilddError, match="runtime directory"):
        multiprocess_dir(there)
    assert not any((planted / "elsewhere").iterdir())


def test_a_worker_file_being_created_does_not_break_a_scrape(tmp_path: Path) -> None:
    # In a child process: metrics_app() starts counting for good in the process that calls it.
    code = f"""
import asyncio
from pathlib import Path
from reflex_buildd_client.exposition import metrics_app
from reflex_buildd_client.settings import Settings

root = Path({str(tmp_path)!r})
app = metrics_app(
    Settings.load(cache_dir=root / "c", environ={{"REFLEX_BUILDD_METRICS_DIR": str(root)}})
)
# Another worker between creating its counter file and sizing it.
(root / "counter_424242.db").write_bytes(b"")
sent = []

async def send(message):
    sent.append(message)

asyncio.run(app({{"type": "http", "method": "GET", "path": "/", "headers": []}}, None, send))
print(sent[0]["status"])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "200"


def test_every_event_lands_in_its_metric() -> None:
    # In a child process (counting starts for good): each hook, once, then one scrape.
    code = """
from prometheus_client import CollectorRegistry, generate_latest
from reflex_buildd_client import metrics

registry = CollectorRegistry()
metrics.start(registry)
for event, fields in [
    ("hit", {}), ("miss", {}), ("published", {"seconds": 3.5}), ("failed", {}),
    ("cancelled", {}), ("pulled", {"bytes": 1000}), ("remote-miss", {}),
    ("remote-error", {}), ("remote-refused", {"reason": "unsigned"}),
    ("pushed", {"bytes_sent": 250}), ("start", {}), ("evicted", {}),
]:
    metrics.journal_event(event, fields)
metrics.waited(2.0)
metrics.pushed("present")
metrics.backend_restarted()
headers = ((b"content-type", b"text/html"), (b"content-encoding", b"br"))
for _ in range(3):
    metrics.served(200, headers)
metrics.served(304, ((b"etag", b'"x"'),))
metrics.flush()
print(generate_latest(registry).decode())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    samples: dict[str, float] = {}
    for line in result.stdout.splitlines():
        if (found := SAMPLE.match(line)) and found["name"].startswith("reflex_buildd_"):
            labels = ",".join(sorted(found["labels"].split(","))) if found["labels"] else ""
            samples[f"{found['name']}{{{labels}}}" if labels else found["name"]] = float(
                found["value"]
            )
    assert counts(samples) == {
        'reflex_buildd_artifact_lookups_total{result="hit"}': 1,
        'reflex_buildd_artifact_lookups_total{result="miss"}': 1,
        "reflex_buildd_artifact_wait_seconds_count": 1,
        'reflex_buildd_builds_total{outcome="published"}': 1,
        'reflex_buildd_builds_total{outcome="failed"}': 1,
        'reflex_buildd_builds_total{outcome="cancelled"}': 1,
        "reflex_buildd_build_seconds_count": 1,
        'reflex_buildd_remote_pulls_total{result="pulled"}': 1,
        'reflex_buildd_remote_pulls_total{result="miss"}': 1,
        'reflex_buildd_remote_pulls_total{result="error"}': 1,
        'reflex_buildd_remote_pulls_total{result="refused"}': 1,
        'reflex_buildd_remote_refusals_total{reason="unsigned"}': 1,
        'reflex_buildd_remote_pushes_total{result="pushed"}': 1,
        'reflex_buildd_remote_pushes_total{result="present"}': 1,
        'reflex_buildd_remote_bytes_total{direction="received"}': 1000,
        'reflex_buildd_remote_bytes_total{direction="sent"}': 250,
        "reflex_buildd_backend_restarts_total": 1,
        'reflex_buildd_served_responses_total{encoding="br",status="200"}': 3,
        'reflex_buildd_served_responses_total{encoding="identity",status="304"}': 1,
    }
    assert samples["reflex_buildd_build_seconds_sum"] == 3.5


def test_reference_lists_every_metric() -> None:
    from conftest import REPO
    from reflex_buildd_client.metrics import METRIC_NAMES

    section = (REPO / "docs" / "reference.md").read_text().split("## Metrics")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(reflex_buildd_[a-z_]+)` \|", section, re.M)
    assert sorted(rows) == sorted(METRIC_NAMES)
