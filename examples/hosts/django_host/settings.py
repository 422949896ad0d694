"""Minimal Django settings for the django_host example (no database needed)."""

SECRET_KEY = "reflex-buildd-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.hosts.django_host.urls"
INSTALLED_APPS = ["examples.hosts.django_host.apps.DjangoHostConfig"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
