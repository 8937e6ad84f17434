"""Inventory sync of N VMs from a simulator through pypsrp: seconds and peak RSS."""
import resource
import time

from django.core.management import call_command


def add_arguments(parser):
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--auth", choices=["basic", "ntlm"], default="ntlm",
                        help="ntlm: NTLM with every message encrypted, as a customer's VMM is reached; "
                             "basic: Basic over HTTP, no encryption (what only a simulator allows)")
    parser.add_argument("--repeat", type=int, default=3, help="syncs to run; the best is reported")


def run(options) -> dict:
    from ops.fabric import transport
    from ops.fabric.session import close_all
    from ops.inventory.sync import sync_connection
    from ops.models import ServerConnection, VirtualMachine
    from ops.simproc import spawn

    call_command("migrate", verbosity=0, interactive=False)
    sim = spawn("scale", vms=options["vms"], time_scale=0.001)
    conn = None
    try:
        ServerConnection.objects.filter(name="bench-inventory").delete()
        conn = ServerConnection(name="bench-inventory", kind="vmm", host=sim.host, port=sim.port, use_https=False,
                                auth=options["auth"], cert_validation=False, username=sim.username, operation_timeout=120)
        conn.set_password(sim.password)
        conn.save()
        times = []
        record = None
        for _ in range(max(1, options["repeat"])):
            started = time.perf_counter()
            record = sync_connection(conn, "bench")
            times.append(time.perf_counter() - started)
            if not record.ok:
                raise RuntimeError(f"sync failed: {record.error}")
        vm_count = VirtualMachine.objects.filter(connection=conn).count()
        return {
            "auth": transport.negotiated(options["auth"], use_https=False, validated=False),
            "vms": vm_count,
            "seconds": round(min(times), 3),
            "first_sync_seconds": round(times[0], 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "counts": record.counts,
        }
    finally:
        close_all()
        if conn is not None:
            ServerConnection.objects.filter(pk=conn.pk).delete()
        sim.stop()
