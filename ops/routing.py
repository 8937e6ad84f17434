"""Websocket routes (mounted by portal/asgi.py behind AuthMiddlewareStack)."""
from django.urls import path, re_path

from . import consumers

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", consumers.RunConsumer.as_asgi()),
    re_path(r"", consumers.NotFoundConsumer.as_asgi()),  # last: any other path closes with 4404
]
