"""A host starting on a hit imports only what a hit needs (issue 21, item 5).

What a host imports is most of what the mount adds to its start: the dev
proxy, the remote client, the daemon's grace and the builder's entry points
belong to ``reflex-buildd dev``, a remote tier, policy ``wait`` and a miss.
Each check runs in a fresh interpreter, as a host process starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHOWCASE, Built, tool_env

# Modules a hit never needs, and what does need them.
NOT_ON_A_HIT = {
    "reflex_buildd_client.dev.proxy": "reflex-buildd dev",
    "reflex_buildd_client.dev.target": "reflex-buildd dev",
    "reflex_buildd_client.remote.pull": "a remote tier",
    "reflex_buildd_client.startup.builder": "a miss under policy build",
    "reflex_buildd_client.startup.nodaemon": "policy wait",
    "reflex_buildd": "a miss under policy build",
}

_HOST_ON_A_HIT = """
import asyncio, json, sys
import fastapi
from reflex_buildd_client import mount

app = fastapi.FastAPI()
reflex = mount(app, "/admin", project=sys.argv[1], cache_dir=sys.argv[2], policy=sys.argv[3])
reflex.open_artifact()  # what startup() runs first, in a thread
reflex.site("/admin")  # what the first request prepares
print(json.dumps(sorted(sys.modules)))
"""


def _modules_of_a_host(built: Built, cache_dir: Path, policy: str, **env: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _HOST_ON_A_HIT, str(SHOWCASE), str(cache_dir), policy],
        capture_output=True,
        text=True,
        timeout=60,
        env=tool_env(**env),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("policy", ["build", "wait", "fail"])
def test_a_hit_imports_only_what_it_needs(
    policy: str, showcase_build: Built, cache_dir: Path
) -> None:
    modules = _modules_of_a_host(showcase_build, cache_dir, policy)
    assert "reflex_buildd_client.startup.checkout" in modules  # it did start
    imported = {name: why for name, why in NOT_ON_A_HIT.items() if name in modules}
    if policy == "wait":
        # The grace that ends a wait nobody serves is made before the wait.
        imported.pop("reflex_buildd_client.startup.nodaemon", None)
    assert not imported, f"a hit imported what only these need: {imported}"
