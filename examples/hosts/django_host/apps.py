"""The example's Django app: its ready() is the host's own startup hook."""

from django.apps import AppConfig

events: list[str] = []


class DjangoHostConfig(AppConfig):
    """Records that Django's own startup hook ran."""

    name = "examples.hosts.django_host"
    label = "django_host"

    def ready(self) -> None:
        """Django's startup hook (it has no lifespan)."""
        events.append("host startup")
