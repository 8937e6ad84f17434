"""The PSRP wire against the simulator through pypsrp: pool open, a small call, a large listing.

Figures: ``pool_open_ms`` (open a runspace pool), ``small_invoke_ms`` (mean of a
one-object call), ``listing_s`` (``Get-SCVirtualMachine -All | Select-Object ... |
ConvertTo-Json`` over N VMs, fetched raw so pypsrp's deserializer does not count:
the server's cost plus the transport) and ``listing_mb``.
"""
import time

LISTING_FIELDS = ["ID", "Name", "Status", "HostName", "Cloud", "IsHighlyAvailable", "Memory", "Custom1", "Owner",
                  "VMCheckpoints"]
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"


def add_arguments(parser):
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--auth", choices=["basic", "ntlm"], default="ntlm",
                        help="ntlm: NTLM with every message encrypted, as a customer's VMM is reached; "
                             "basic: Basic over HTTP, no encryption (what only a simulator allows)")
    parser.add_argument("--repeat", type=int, default=3, help="listings to run; the best is reported")


def _listing(pool) -> tuple[float, int]:
    from pypsrp.powershell import PowerShell

    ps = PowerShell(pool)
    ps.add_cmdlet("Get-SCVirtualMachine").add_parameter("All")
    ps.add_cmdlet("Select-Object").add_parameter("Property", LISTING_FIELDS)
    ps.add_cmdlet("ConvertTo-Json").add_parameter("Compress")
    started = time.perf_counter()
    ps.begin_invoke()
    total, state = 0, None
    while state != DONE:
        state, _, buffers = pool.shell.receive("stdout", command_id=ps._command_id)
        total += len(buffers["stdout"])
    return time.perf_counter() - started, total


def run(options) -> dict:
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    from ops.fabric import transport
    from ops.simproc import spawn

    sim = spawn("scale", vms=options["vms"], time_scale=0.001)
    try:
        wsman = WSMan(server=sim.host, port=sim.port, username=sim.username, password=sim.password, ssl=False,
                      auth=options["auth"], cert_validation=False, no_proxy=True,
                      encryption=transport.encryption(options["auth"], use_https=False))
        started = time.perf_counter()
        pool = RunspacePool(wsman)
        pool.open()
        open_ms = (time.perf_counter() - started) * 1000
        try:
            PowerShell(pool).add_cmdlet("Get-SCVMMServer").invoke()
            started = time.perf_counter()
            for _ in range(20):
                PowerShell(pool).add_cmdlet("Get-SCVMMServer").invoke()
            invoke_ms = (time.perf_counter() - started) * 1000 / 20
            listings = [_listing(pool) for _ in range(max(1, options["repeat"]))]
        finally:
            pool.close()
        return {
            "auth": transport.negotiated(options["auth"], use_https=False, validated=False),
            "vms": options["vms"],
            "pool_open_ms": round(open_ms, 1),
            "small_invoke_ms": round(invoke_ms, 1),
            "listing_s": round(min(s for s, _ in listings), 3),
            "first_listing_s": round(listings[0][0], 3),
            "listing_mb": round(listings[0][1] / 1e6, 1),
        }
    finally:
        sim.stop()
