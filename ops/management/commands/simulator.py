"""``manage.py simulator``: the simulated VMM/SCOM fabric as a WinRM server.

The simulator imports nothing from Django; this command only parses options
and runs it until Ctrl-C or SIGTERM (saving its state when ``--state`` is set).
"""
import signal
import threading

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the simulated VMM/SCOM fabric (WinRM/PSRP over HTTP on loopback)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5985)
        parser.add_argument("--scenario", default="demo", help="'demo', 'scale', or a path to a YAML/JSON scenario file")
        parser.add_argument("--vms", type=int, default=None, help="number of VMs for the scale scenario")
        parser.add_argument("--username", default="slipway")
        parser.add_argument("--password", default="slipway-demo")
        parser.add_argument("--state", default=None, help="JSON file the fabric state is loaded from and saved to")
        parser.add_argument("--time-scale", type=float, default=1.0, help="job durations x this (0.01 = 100x faster)")
        parser.add_argument("--https", action="store_true", help="serve HTTPS with a generated self-signed certificate")

    def handle(self, *args, **opts):
        from ops.simulator.engine import SimEngine
        from ops.simulator.server import start_simulator

        if opts["time_scale"] <= 0:
            raise CommandError("--time-scale must be greater than 0")
        try:
            engine = SimEngine.from_scenario(opts["scenario"], vms=opts["vms"], time_scale=opts["time_scale"],
                                             state_file=opts["state"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load scenario {opts['scenario']!r}: {exc}") from exc
        server = start_simulator(engine, host=opts["host"], port=opts["port"], username=opts["username"],
                                 password=opts["password"], https=opts["https"])
        self.stdout.write(f"Fabric simulator ({opts['scenario']}) listening on {server.url}")
        self.stdout.write(f"  username: {opts['username']}  password: {opts['password']}")
        self.stdout.write(f"  control:  POST {server.control_url} (JSON, same credentials)")
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            if opts["state"]:
                engine.control({"op": "save"})
            self.stdout.write("Simulator stopped.")
