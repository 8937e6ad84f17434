"""The one way to the fabric: VMM, SCOM and ConfigMgr over PowerShell Remoting.

``session_for(connection)`` gives a pooled, thread-safe session per server;
``vmm``, ``vmm_hosts`` (a node's facts and restart), ``scom`` and ``configmgr`` (collections,
client actions, update deployments and their status) hold typed functions that send structured commands
(never PowerShell text built from input) and return dataclasses; ``errors``
holds the typed exceptions, each naming the server, cmdlet, target and the
server's own message.
"""
