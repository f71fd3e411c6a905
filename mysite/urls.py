"""Top-level HTTP routes, served by Gunicorn behind nginx."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    path("chat/", include("chat.urls")),
    path("admin/", admin.site.urls),
]
