"""Slipway's fabric simulator: a WinRM/PSRP server in front of a simulated VMM fabric.

A standalone program that happens to live in the tree: nothing here imports Django.
``start_simulator`` is imported lazily so that ``contract`` stays cheap to import.
"""
from __future__ import annotations

import typing

__all__ = ["start_simulator", "control"]


def __getattr__(name: str) -> typing.Any:
    if name in ("start_simulator", "control", "SimulatorServer", "RunningServer"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
