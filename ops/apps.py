from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Slipway fabric and operations"

    def ready(self):
        from django_q.signals import post_spawn  # noqa: PLC0415 (apps are loaded before signals connect)

        from .engine import reaper  # noqa: PLC0415

        # every django-q2 worker process runs a reaper loop: a dead worker's run is taken over within seconds
        post_spawn.connect(reaper.start_loop, dispatch_uid="slipway-reaper-loop")
