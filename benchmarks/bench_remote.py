"""The remote tier: host startup from the remote vs a local build vs a local hit, and
what a second push sends after a one-line edit. All against a real S3 API (moto's
server on 127.0.0.1), measured in one run.

Rows (medians of REPEAT runs, each host a fresh uvicorn process, time to the
first 200 on /admin/):

- host startup, local build: empty cache, policy ``build`` (a machine without
  the remote: it builds, cold workspace, bun's package cache warm);
- host startup, remote hit: empty local cache, the remote has the key;
- host startup, local hit: the artifact is already in the local cache;
- pull alone: download, verify and install the artifact (in process).

Goals: remote hit <= 2x (local hit + pull), build >= 5x remote hit, and bytes
sent by the second push after a one-line edit <= 0.2x the artifact's size.

Run: ``.venv/bin/python benchmarks/bench_remote.py`` (about two minutes).

``--signing``: what signatures cost instead (issue 22's goal: signing and verifying
add at most 2 ms to a push and a pull of the showcase). One showcase build,
then, interleaved and REPEAT_SIGNING times each: a full push into a fresh
namespace and a full pull into an empty cache, unsigned, HMAC and Ed25519 (hosts
holding only the public key); medians and the difference to unsigned in the
same run. The signature's own cost (sealing and opening the showcase manifest
in process, no network) is printed beside it, as the end-to-end difference is
within the noise of moto on a loaded machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHOWCASE = REPO / "examples" / "showcase"
sys.path.insert(0, str(REPO / "tests"))

import bench_build  # noqa: E402  (beside this file)
from conftest import tool_env  # noqa: E402
from reflex_buildd.push import push_artifact  # noqa: E402
from reflex_buildd_client.cache.store import Cache  # noqa: E402
from reflex_buildd_client.remote.bucket import remote_settings  # noqa: E402
from reflex_buildd_client.remote.pull import pull  # noqa: E402
from reflex_buildd_client.settings import Settings  # noqa: E402
from s3server import s3_server  # noqa: E402

REPEAT = 3
REPEAT_SIGNING = 15


def host_startup(project: Path, cache: Path, workdir: Path, **env: str) -> float:
    """Seconds from spawning uvicorn to the first 200 on /admin/ (bench_build's measure)."""
    workdir.mkdir(parents=True)
    return bench_build.host_startup(cache, workdir, SHOWCASE_PROJECT=str(project), **env)


def build(project: Path, cache: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "reflex_buildd", "build", str(project), "--cache-dir", str(cache)],
        check=True,
        capture_output=True,
        timeout=600,
        env=tool_env(),
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp_name, s3_server() as s3:
        tmp = Path(tmp_name)
        os.environ.update(s3.env())
        project = tmp / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
        url = s3.url("bench")
        settings = remote_settings(url, signing_key="b" * 32, allow_http=True)
        assert settings is not None
        remote_env = {
            **s3.env(),
            "REFLEX_BUILDD_REMOTE": url,
            "REFLEX_BUILDD_SIGNING_KEY": "b" * 32,
        }

        builder = tmp / "builder-cache"
        build(project, builder)  # also warms the JS package cache for the rows below
        from reflex_buildd_client.inputs.sources import compute_key
        from reflex_buildd_client.project import find_project

        key, _ = compute_key(find_project(project), settings=Settings.load(), cache_dir=builder)
        artifact = Cache(builder).open(key)
        assert artifact is not None
        first = push_artifact(Cache(builder), artifact, settings)

        local_builds = [
            host_startup(project, tmp / f"fresh{i}", tmp / f"h-build{i}") for i in range(REPEAT)
        ]
        remote_hits = [
            host_startup(project, tmp / f"empty{i}", tmp / f"h-remote{i}", **remote_env)
            for i in range(REPEAT)
        ]
        local_hits = [
            host_startup(project, builder, tmp / f"h-local{i}", **remote_env) for i in range(REPEAT)
        ]
        pulls = []
        for i in range(REPEAT):
            started = time.perf_counter()
            assert pull(Cache(tmp / f"pull{i}"), settings, key) is not None
            pulls.append(time.perf_counter() - started)

        page = project / "showcase" / "showcase.py"
        # A one-line edit that changes the output: the about page's heading.
        source = page.read_text()
        assert source.count('rx.heading("About"') == 1
        page.write_text(source.replace('rx.heading("About"', 'rx.heading("About us"'))
        build(project, builder)
        key2, _ = compute_key(find_project(project), settings=Settings.load(), cache_dir=builder)
        second_artifact = Cache(builder).open(key2)
        assert second_artifact is not None and key2 != key
        second = push_artifact(Cache(builder), second_artifact, settings)
        # Counted as the remote stores it: each distinct blob once.
        size2 = sum({e.digest: e.size for e in second_artifact.manifest.files.values()}.values())

    build_s, remote_s = statistics.median(local_builds), statistics.median(remote_hits)
    local_s, pull_s = statistics.median(local_hits), statistics.median(pulls)
    rows = [
        ("host startup, local build (empty cache)", build_s),
        ("host startup, remote hit (empty local cache)", remote_s),
        ("host startup, local hit", local_s),
        ("pull alone (download, verify, install)", pull_s),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measurement':<{width}}  seconds")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.3f}")
    print()
    print(f"first push: {first.blobs_sent} blobs, {first.bytes_sent} bytes")
    print(
        f"second push after a one-line edit: {second.blobs_sent} blobs, {second.bytes_sent} "
        f"bytes of an artifact of {size2} bytes ({second.blobs_skipped} blobs skipped)"
    )
    print()
    print(f"remote hit / (local hit + pull)  = {remote_s / (local_s + pull_s):6.2f}x  (goal <= 2x)")
    print(f"local build / remote hit         = {build_s / remote_s:6.1f}x  (goal >= 5x)")
    print(f"second push bytes / artifact     = {second.bytes_sent / size2:6.3f}x  (goal <= 0.2x)")
    print(f"[python {sys.version.split()[0]}, {os.cpu_count()} cpus]")


def _trust_modes(tmp: Path, url: str) -> dict[str, tuple[Any, Any]]:
    """(builder settings, host settings) per trust mode, all on ``url``."""
    from reflex_buildd_client.remote.keyfiles import generate_key_pair

    key = generate_key_pair(tmp / "bench-key")
    modes = {
        "unsigned": (remote_settings(url, allow_http=True),) * 2,
        "hmac": (remote_settings(url, signing_key="h" * 32, allow_http=True),) * 2,
        "ed25519": (
            remote_settings(url, signing_key_file=key.source, allow_http=True),
            remote_settings(url, trusted_keys=key.source + ".pub", allow_http=True),
        ),
    }
    return {name: pair for name, pair in modes.items()}


def _in_process_cost(artifact: Any, modes: dict[str, tuple[Any, Any]]) -> dict[str, float]:
    """Milliseconds to seal and open the manifest once, per mode (median of 200)."""
    from reflex_buildd_client.remote.envelope import open_envelope, seal

    cost = {}
    for name, (builder, host) in modes.items():
        times = []
        for _ in range(200):
            started = time.perf_counter()
            data = seal(artifact.manifest, builder.trust, "main")
            open_envelope(data, artifact.key, host.trust, "main")
            times.append(time.perf_counter() - started)
        cost[name] = statistics.median(times) * 1000
    return cost


def signing() -> None:
    """Push and pull of the showcase per trust mode, interleaved (see the module doc)."""
    import dataclasses

    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp_name, s3_server() as s3:
        tmp = Path(tmp_name)
        os.environ.update(s3.env())
        project = tmp / "showcase"
        shutil.copytree(SHOWCASE, project, ignore=shutil.ignore_patterns("__pycache__"))
        builder_cache = tmp / "builder-cache"
        build(project, builder_cache)
        from reflex_buildd_client.inputs.sources import compute_key
        from reflex_buildd_client.project import find_project

        key, _ = compute_key(
            find_project(project), settings=Settings.load(), cache_dir=builder_cache
        )
        artifact = Cache(builder_cache).open(key)
        assert artifact is not None
        modes = _trust_modes(tmp, s3.url("bench-signing"))
        pushes: dict[str, list[float]] = {name: [] for name in modes}
        pulls: dict[str, list[float]] = {name: [] for name in modes}
        for i in range(REPEAT_SIGNING):
            for name, (builder, host) in modes.items():
                namespace = f"{name}-{i}"
                started = time.perf_counter()
                push_artifact(
                    Cache(builder_cache),
                    artifact,
                    dataclasses.replace(builder, namespace=namespace),
                )
                pushes[name].append(time.perf_counter() - started)
                reader = dataclasses.replace(host, read_namespaces=(namespace,))
                started = time.perf_counter()
                assert pull(Cache(tmp / f"pull-{namespace}"), reader, key) is not None
                pulls[name].append(time.perf_counter() - started)
        cost = _in_process_cost(artifact, modes)
    files = len(artifact.manifest.files)
    print(f"showcase: {files} files; medians of {REPEAT_SIGNING} interleaved runs per mode")
    print(
        f"{'mode':<10} {'push ms':>9} {'vs unsigned':>12} {'pull ms':>9} {'vs unsigned':>12} "
        f"{'seal+open ms':>13}"
    )
    base_push = statistics.median(pushes["unsigned"]) * 1000
    base_pull = statistics.median(pulls["unsigned"]) * 1000
    for name in modes:
        push_ms = statistics.median(pushes[name]) * 1000
        pull_ms = statistics.median(pulls[name]) * 1000
        print(
            f"{name:<10} {push_ms:9.1f} {push_ms - base_push:+9.1f} ms {pull_ms:9.1f} "
            f"{pull_ms - base_pull:+9.1f} ms {cost[name]:13.3f}"
        )
    extra = cost["ed25519"] - cost["unsigned"]
    print(f"\ned25519 signing + verifying, in process: {extra:.3f} ms per push+pull (goal <= 2 ms)")
    print(
        f"ed25519 push / unsigned push = {statistics.median(pushes['ed25519']) * 1000 / base_push:.3f}x, "
        f"pull = {statistics.median(pulls['ed25519']) * 1000 / base_pull:.3f}x"
    )
    print(f"[python {sys.version.split()[0]}, {os.cpu_count()} cpus]")


if __name__ == "__main__":
    if "--signing" in sys.argv[1:]:
        signing()
    else:
        main()
