"""Cmdlet implementations of the simulator (VMM, SCOM and generic PowerShell)."""
