"""``manage.py demo``: the whole product on one machine, over the simulated fabric.

Migrates, creates the demo users, starts the fabric simulator (its state kept
in the data directory so the demo survives a restart), connects Slipway to it,
reads the inventory, then runs the ASGI web server and the django-q2 worker
until Ctrl-C, which stops all of them.
"""
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_USERS = [
    # username, password, roles, note
    ("admin", "slipway-admin", ("admin",), "admin: hosting plans, connections"),
    ("operator", "slipway-operator", ("operator",), "operator: runbooks, schedules, fabric"),
    ("alice", "slipway-alice", ("tenant",), "tenant: Contoso (Gold: checkpoints; Silver: restore only)"),
    ("bob", "slipway-bob", ("tenant",), "tenant: Contoso (Gold and Silver)"),
    ("carol", "slipway-carol", ("tenant",), "tenant: Fabrikam (Dev: 3 checkpoints kept, 14 days)"),
]

# The demo's hosting plans, each with one subscription adopting the simulator's user role of the same
# name (ops/simulator/scenarios/demo.yaml): plan, cloud, checkpoint permission, kept, max age, power actions
DEMO_PLANS = [
    ("Contoso Gold", "Gold", "create_view_restore", 1, None, ("start", "shutdown", "stop", "save")),
    ("Contoso Silver", "Silver", "view_restore", 1, None, ("start", "shutdown")),
    ("Fabrikam Dev", "Dev", "create_view_restore", 3, 14, ("start", "shutdown", "stop", "save")),
]
# subscription (= the VMM user role it adopts) -> members (Django user, as VMM lists them in the role)
DEMO_SUBSCRIPTIONS = {
    "Contoso Gold": [("alice", "CONTOSO\\alice"), ("bob", "CONTOSO\\bob")],
    "Contoso Silver": [("alice", "CONTOSO\\alice"), ("bob", "CONTOSO\\bob")],
    "Fabrikam Dev": [("carol", "FABRIKAM\\carol")],
}


class Command(BaseCommand):
    help = "Run Slipway with the simulated demo fabric: web server, worker and simulator."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=5985, help="the simulator's HTTP listener (NTLM)")
        parser.add_argument("--sim-https-port", type=int, default=None,
                            help="the simulator's HTTPS listener (default: --sim-port + 1, so 5986)")
        parser.add_argument("--sim-username", default="slipway")
        parser.add_argument("--sim-password", default="slipway-demo")
        parser.add_argument("--time-scale", type=float, default=1.0, help="simulated job durations x this (0.1 = 10x faster)")

    def handle(self, *args, **opts):
        from ops.simproc import spawn, wait_for_port

        def interrupt(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)  # a service manager's stop behaves like Ctrl-C
        # and so does `kill -INT`: a shell starts a background job (`demo &`) with SIGINT ignored
        signal.signal(signal.SIGINT, interrupt)
        os.environ["SLIPWAY_PLAIN_HTTP"] = "1"
        hosts = set(settings.ALLOWED_HOSTS) | {opts["host"], "localhost", "127.0.0.1"}
        os.environ["ALLOWED_HOSTS"] = ",".join(sorted(hosts))
        self.stdout.write("Preparing the database ...")
        call_command("migrate", verbosity=0, interactive=False)
        self._users()

        data_dir = settings.DATA_DIR
        self.stdout.write(f"Starting the fabric simulator on {opts['host']}:{opts['sim_port']} ...")
        sim = spawn("demo", host=opts["host"], port=opts["sim_port"], username=opts["sim_username"],
                    password=opts["sim_password"], time_scale=opts["time_scale"],
                    state_file=str(data_dir / "simulator-state.json"), quiet=False,
                    https_port=opts["sim_https_port"] or opts["sim_port"] + 1, tls_dir=str(data_dir / "simulator-tls"))
        procs = [sim.proc]
        try:
            self._connections(sim)
            from ops.system_schedules import ensure_system_schedules

            ensure_system_schedules()
            self._sync()
            self._tenancy()
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            self.worker_cmd = manage + ["worker"]   # qcluster that stops at any moment (ops/management/commands/worker.py)
            procs.append(self._start_worker())
            procs.append(subprocess.Popen([sys.executable, "-m", "daphne", "-b", opts["host"], "-p", str(opts["port"]),
                                           "portal.asgi:application"], cwd=settings.BASE_DIR))
            wait_for_port(opts["host"], opts["port"], 60, procs[-1])
            url = f"http://{opts['host']}:{opts['port']}/"
            self.stdout.write(self.style.SUCCESS(f"\nSlipway is running at {url}"))
            self.stdout.write("Sign in as:")
            for username, password, _, note in DEMO_USERS:
                self.stdout.write(f"  {username:<9} / {password:<18} ({note})")
            self.stdout.write("Press Ctrl-C to stop the web server, the worker and the simulator.\n")
            self._wait(procs)
        except KeyboardInterrupt:
            pass
        finally:
            # a second Ctrl-C or SIGTERM while stopping must not abandon the children half-stopped
            def still_stopping(*_):
                self.stdout.write("Still stopping: waiting for the web server, the worker and the simulator ...")

            signal.signal(signal.SIGTERM, still_stopping)
            signal.signal(signal.SIGINT, still_stopping)
            self.stdout.write("\nStopping ...")
            for p in reversed(procs):
                if p.poll() is None:
                    # SIGTERM, not SIGINT: a child of a background demo inherits SIGINT ignored, and
                    # daphne (Twisted) then never stops on SIGINT; daphne, qcluster and the simulator
                    # all stop cleanly on SIGTERM
                    p.send_signal(signal.SIGTERM)
            # how long a child may take to stop before it is killed (tests/portal/test_demo_stop.py lengthens it)
            grace = float(os.environ.get("SLIPWAY_DEMO_STOP_SECONDS", "15"))
            deadline = time.monotonic() + grace
            for p in procs:
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.stdout.write(self.style.WARNING(
                        f"Killed {' '.join(map(str, p.args[1:3]))}: it did not stop within {grace:g} s of SIGTERM."))
                    p.kill()
            if getattr(self, "worker_cmd", None):
                for p in procs:
                    if p.args == self.worker_cmd:
                        self._stop_group(p)   # nothing of the worker's cluster outlives the demo
            self.stdout.write("Stopped.")

    def _wait(self, procs):
        """Until Ctrl-C. A worker that dies is replaced (its runs resume once their lease expires:
        try `kill -9` on it); the simulator or the web server dying ends the demo."""
        restarts = 0
        while True:
            for i, p in enumerate(procs):
                if p.poll() is None:
                    continue
                if p.args == self.worker_cmd and restarts < 20:
                    restarts += 1
                    self.stdout.write(self.style.WARNING(
                        f"The worker exited with code {p.returncode}; starting a new one. Runs it was "
                        "advancing go on once their lease expires."))
                    self._stop_group(p)   # its sentinel and workers outlive a killed qcluster
                    procs[i] = self._start_worker()
                    continue
                raise SystemExit(f"a demo process exited with code {p.returncode}: {p.args}")
            time.sleep(0.5)

    def _start_worker(self):
        # its own process group: qcluster's sentinel and workers are its children, and they go on
        # (an orphaned cluster) when qcluster itself is killed; the group lets us stop them all
        return subprocess.Popen(self.worker_cmd, cwd=settings.BASE_DIR, start_new_session=True)

    @staticmethod
    def _stop_group(p, sig=signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def _users(self):
        from django.contrib.auth import get_user_model

        from ops import roles

        User = get_user_model()
        for username, password, role_names, _ in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
            roles.grant(user, *role_names)

    def _connections(self, sim):
        """As a customer reaches VMM: NTLM over HTTP with every message encrypted (vmm01), and HTTPS with
        the listener's certificate validated against the CA that signed it (scom01)."""
        from ops.models import ServerConnection

        for name, kind, https in (("vmm01", "vmm", False), ("scom01", "scom", True), ("cm01", "configmgr", False)):
            conn = ServerConnection.objects.filter(name=name).first() or ServerConnection(name=name)
            conn.kind, conn.host = kind, sim.host
            if https:
                conn.port, conn.use_https, conn.auth = sim.https_port, True, "basic"
                conn.cert_validation, conn.ca_bundle = True, sim.ca_file
            else:
                conn.port, conn.use_https, conn.auth = sim.port, False, "ntlm"
                conn.cert_validation, conn.ca_bundle = True, ""
            conn.username = sim.username
            conn.set_password(sim.password)
            conn.save()
            transport = f"NTLM, messages encrypted, {conn.endpoint}" if not https else \
                f"Basic over HTTPS, certificate checked against {sim.ca_file}, {conn.endpoint}"
            self.stdout.write(f"Connection {name}: {transport}")

    def _tenancy(self):
        """The demo's plans and subscriptions, made once (a restart finds them); a role the simulator's
        state does not have (a state file from an older demo) is reported and skipped."""
        from django.contrib.auth import get_user_model
        from django.core.exceptions import ValidationError

        from ops.models import Plan, ServerConnection, Subscription
        from ops.services import plans, subscriptions

        User = get_user_model()
        admin = User.objects.get(username="admin")
        conn = ServerConnection.objects.get(name="vmm01")
        for name, cloud, permission, kept, max_age, power in DEMO_PLANS:
            try:
                plan = Plan.objects.filter(name=name).first() or plans.create_plan(
                    admin, name=name, connection=conn, clouds=[cloud], checkpoint_permission=permission,
                    checkpoints_kept=kept, remove_oldest_when_full=kept > 1, checkpoint_max_age_days=max_age,
                    power_actions=power, description=f"Demo plan: the {cloud} cloud")
                if not Subscription.objects.filter(name=name).exists():
                    members = [(User.objects.get(username=u), vmm_user) for u, vmm_user in DEMO_SUBSCRIPTIONS[name]]
                    subscriptions.create_subscription(admin, plan, name, members, adopt_user_role=name)
            except ValidationError as exc:
                self.stdout.write(self.style.WARNING(
                    f"Demo plan {name}: not set up: {'; '.join(exc.messages)}. (A simulator state from an older demo? "
                    f"Stop the demo, delete {settings.DATA_DIR / 'simulator-state.json'} and start it again.)"))

    def _sync(self):
        from ops.inventory.sync import sync_all

        for record in sync_all("demo"):
            if record.ok:
                self.stdout.write(f"Inventory read from {record.connection.name}: {record.counts}")
            else:
                self.stdout.write(self.style.WARNING(f"Inventory sync failed: {record.error}"))
