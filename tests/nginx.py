"""Debian's nginx in front of a host, as deployed: same machine, uvicorn's defaults.

The config is the one ``docs/serving.md`` recommends: strip an external
prefix, say so in ``X-Forwarded-Prefix``, append the client to
``X-Forwarded-For`` (which makes uvicorn, trusting 127.0.0.1 by default,
replace the ASGI client with the browser's address), pass websockets. nginx
runs in the foreground as one process (``master_process off``) with every
path in the test's temp dir, listens on 127.0.0.1 only, and ``timeout`` stops
it by itself should the test that started it be gone.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, free_port, stop_process, wait_listening

# Debian's nginx: installed, or unpacked into .tools by scripts/setup.sh.
NGINX = shutil.which("nginx") or str(REPO / ".tools" / "nginx" / "usr" / "sbin" / "nginx")

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{
            proxy_pass http://127.0.0.1:{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For {forwarded_for};
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix {prefix};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """A running nginx: its origin, the prefix it strips, and its error log."""

    url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def run_nginx(
    upstream_port: int,
    prefix: str,
    *,
    tmp: Path,
    forwarded_for: str = "$proxy_add_x_forwarded_for",
    max_seconds: int = 900,
) -> Iterator[Nginx]:
    """nginx on a free 127.0.0.1 port, ``prefix`` stripped in front of ``upstream_port``.

    ``forwarded_for`` is what nginx puts in ``X-Forwarded-For``: the client
    appended (the default), or a fixed address, to stand for a browser on
    another machine when the browser can only come from 127.0.0.1.
    """
    if not Path(NGINX).is_file():
        raise RuntimeError(f"nginx not found ({NGINX}): run scripts/setup.sh")
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        CONFIG.format(
            tmp=tmp, port=port, upstream=upstream_port, prefix=prefix, forwarded_for=forwarded_for
        )
    )
    log = tmp / "error.log"
    with (tmp / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            ["timeout", str(max_seconds), NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(log)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Nginx(f"http://127.0.0.1:{port}", prefix, process, log)
    try:
        try:
            wait_listening(port, process, timeout=20, what="nginx")
        except (RuntimeError, TimeoutError) as exc:
            details = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{exc}: {details}") from None
        yield running
    finally:
        stop_process(process)
