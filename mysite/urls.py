"""Top-level HTTP routes, served by Gunicorn behind nginx."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chat import views

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    path("chat/", include("chat.urls")),
    path("healthz/live", views.live, name="health-live"),
    path("healthz/ready", views.ready, name="health-ready"),
    path("admin/", admin.site.urls),
]
