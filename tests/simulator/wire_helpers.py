"""The wire tests' harness: a simulator served on 127.0.0.1 and a FabricSession (the real
pypsrp client) pointed at it, as a VMM server would be."""
from __future__ import annotations

import dataclasses
import secrets

WIRE_TIME_SCALE = 0.01  # a 6 s live migration takes 60 ms


@dataclasses.dataclass
class Wire:
    engine: object
    server: object
    session: object  # ops.fabric.session.FabricSession

    def control(self, command: dict) -> dict:
        result = self.engine.control(command)
        assert result["ok"], result
        return result

    def state(self) -> dict:
        return self.control({"op": "state"})

    def vm_state(self, name: str) -> dict:
        return next(v for v in self.state()["vms"] if v["name"] == name)

    def host_state(self, short_name: str) -> dict:
        return next(h for h in self.state()["hosts"] if h["name"].split(".")[0] == short_name)

    def vm(self, name: str):
        """The VM as the client reads it (Get-SCVirtualMachine -All over the wire)."""
        from ops.fabric import vmm

        return next(v for v in vmm.list_vms(self.session) if v.name == name)

    def checkpoint(self, vm_name: str, cp_name: str):
        from ops.fabric import vmm

        return next(c for c in vmm.list_checkpoints(self.session, self.vm(vm_name).id) if c.name == cp_name)

    def wait(self, job, timeout: float = 60, **kw):
        from ops.fabric import vmm

        return vmm.wait_job(self.session, job, timeout=timeout, poll=kw.pop("poll", 0.02), **kw)

    def wsman(self):
        from pypsrp.wsman import WSMan

        s = self.server
        return WSMan(**s.wsman_kwargs(operation_timeout=10, read_timeout=15))


def serve(engine) -> Wire:
    from ops.fabric.session import FabricSession, ServerSettings
    from ops.simulator.server import start_simulator

    server = start_simulator(engine, port=0, username="slipway", password=secrets.token_urlsafe(10))
    settings = ServerSettings(name="vmm01", kind="vmm", host=server.host, port=server.port, use_https=False,
                              auth="ntlm", cert_validation=False, username=server.username, password=server.password,
                              timeout=10)
    return Wire(engine, server, FabricSession(settings))
