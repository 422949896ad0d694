from django.urls import path, re_path

from . import views

urlpatterns = [
    path("health", views.health),
    path("assets/<str:name>", views.host_file),
    path("static/<str:name>", views.host_file),
    re_path(r"^.*$", views.catch_all),
]
