"""``manage.py simulator``: the simulated VMM/SCOM fabric as a WinRM server.

The simulator imports nothing from Django; this command only parses options
and runs it until Ctrl-C or SIGTERM (saving its state when ``--state`` is set).
"""
import argparse
import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from ops.simproc import PASSWORD_ENV

DEFAULT_PASSWORD = "slipway-demo"


class Command(BaseCommand):
    help = ("Run the simulated VMM/SCOM fabric as a WinRM listener: Negotiate (NTLM, with message encryption) "
            "and Basic over HTTP, or HTTPS with a certificate signed by a CA of its own.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5985)
        parser.add_argument("--scenario", default="demo", help="'demo', 'scale', or a path to a YAML/JSON scenario file")
        parser.add_argument("--vms", type=int, default=None, help="number of VMs for the scale scenario")
        parser.add_argument("--username", default="slipway")
        parser.add_argument("--password", default=None,
                            help=f"for a person at a terminal; programs set {PASSWORD_ENV} or use --password-file "
                                 f"(a command line is visible to every local user). Default: {DEFAULT_PASSWORD}")
        parser.add_argument("--password-file", default=None, help="read the password from this file (first line)")
        parser.add_argument("--state", default=None, help="JSON file the fabric state is loaded from and saved to")
        parser.add_argument("--time-scale", type=float, default=1.0, help="job durations x this (0.01 = 100x faster)")
        parser.add_argument("--https", action="store_true",
                            help="serve HTTPS with a certificate signed by a CA of the simulator's own; both are "
                                 "written to --tls-dir so clients validate against the CA")
        parser.add_argument("--https-port", type=int, default=None,
                            help="also serve HTTPS on this port (the same fabric), as a listener with an HTTP and "
                                 "an HTTPS endpoint (5985 and 5986 on Windows)")
        parser.add_argument("--tls-dir", default=None, help="directory for listener-cert.pem and listener-ca.pem "
                                                            "(default: a new temporary directory)")
        parser.add_argument("--allow-unencrypted", action=argparse.BooleanOptionalAction, default=True,
                            help="WinRM's AllowUnencrypted: with --no-allow-unencrypted Basic over HTTP is refused "
                                 "as a default Windows listener refuses it (NTLM over HTTP must always encrypt)")

    @staticmethod
    def _password(opts) -> tuple[str, str]:
        """The password, and how it is shown on the terminal (only one typed there is echoed)."""
        if opts["password_file"]:
            try:
                with open(opts["password_file"], encoding="utf-8") as f:
                    return f.readline().rstrip("\r\n"), f"(from {opts['password_file']})"
            except OSError as exc:
                raise CommandError(f"cannot read --password-file {opts['password_file']}: {exc}") from exc
        if opts["password"] is not None:
            return opts["password"], opts["password"]
        if os.environ.get(PASSWORD_ENV):
            return os.environ[PASSWORD_ENV], f"(from {PASSWORD_ENV})"
        return DEFAULT_PASSWORD, DEFAULT_PASSWORD

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
        password, shown = self._password(opts)
        listeners = [(opts["port"], opts["https"])]
        if opts["https_port"]:
            listeners.append((opts["https_port"], True))
        servers = []
        try:
            for port, https in listeners:
                servers.append(start_simulator(engine, host=opts["host"], port=port, username=opts["username"],
                                               password=password, https=https, tls_dir=opts["tls_dir"],
                                               allow_unencrypted=opts["allow_unencrypted"]))
        except (OSError, ValueError) as exc:
            for server in servers:
                server.stop()
            raise CommandError(f"cannot start the simulator on {opts['host']}:{port}: {exc}") from exc
        self.stdout.write(f"Fabric simulator ({opts['scenario']}) listening on "
                          + " and ".join(server.url for server in servers))
        self.stdout.write(f"  username: {opts['username']}  password: {shown}")
        auth = "Negotiate (NTLM; messages encrypted over HTTP) and Basic"
        if not opts["allow_unencrypted"]:
            auth += " (Basic refused over HTTP: --no-allow-unencrypted)"
        self.stdout.write(f"  auth:     {auth}")
        for server in servers:
            if server.https:
                self.stdout.write(f"  certificate: {server.cert_file} (CN={server.certificate.common_name})")
                self.stdout.write(f"  signed by:   {server.ca_file} (give this CA bundle to clients)")
        self.stdout.write(f"  control:  POST {servers[0].control_url} (JSON, Basic, same credentials)")
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for server in servers:
                server.stop()
            if opts["state"]:
                engine.control({"op": "save"})
            self.stdout.write("Simulator stopped.")
