"""The REST API under /api/v1/ (docs/api.md): serializers that check input, thin viewsets
that call the same services as the pages, OpenAPI by drf-spectacular."""
