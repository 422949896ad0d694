"""Views of the Django host: its own routes beside the mount."""

from django.http import HttpRequest, JsonResponse

from .apps import events


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "events": events})


def host_file(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse({"host": request.path.split("/")[1], "name": name})


def catch_all(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"host": "catch-all", "path": request.path}, status=404)
