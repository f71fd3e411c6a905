"""Chat page routes. ``path:`` lets room names contain slashes (sent as %2F)."""

from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    path("<path:room_name>/", views.room, name="room"),
]
