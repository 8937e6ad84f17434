from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Slipway self-service portal"

    def ready(self):
        from . import signin  # noqa: F401  (connects the sign-in audit receivers)
