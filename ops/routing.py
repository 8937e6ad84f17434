"""Websocket routes (mounted by portal/asgi.py behind AuthMiddlewareStack)."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", consumers.RunConsumer.as_asgi()),
]
