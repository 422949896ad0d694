"""The Django project's asgi.py, with the showcase mounted at /admin.

Django's ASGI handler speaks neither lifespan nor mounts, so a
``PathDispatcher`` sits in front of it: /admin/... goes to the Reflex app
(whose lifespan the dispatcher drives), everything else to Django.
Run: ``uvicorn examples.hosts.django_host.asgi:application``.
"""

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.hosts.django_host.settings")

from django.core.asgi import get_asgi_application

from reflex_buildd_client import PathDispatcher, ReflexMount

PROJECT = Path(os.environ.get("SHOWCASE_PROJECT", Path(__file__).resolve().parents[2] / "showcase"))

django_app = get_asgi_application()
application = PathDispatcher(django_app, {"/admin": ReflexMount(PROJECT)})
