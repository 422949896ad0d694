"""One FastAPI host, two different Reflex projects, both in-process: a host that cannot work.

``FIRST_PROJECT`` is mounted at /first, then ``SECOND_PROJECT`` at /second (each
with its own cache). Reflex keeps one app per process, so the host must fail
at startup, naming the second mount (the later ``mount()``).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from reflex_buildd_client import mount

app = FastAPI()

mount(app, "/first", project=os.environ["FIRST_PROJECT"], cache_dir=os.environ["FIRST_CACHE"])
mount(app, "/second", project=os.environ["SECOND_PROJECT"], cache_dir=os.environ["SECOND_CACHE"])
