"""The run engine: leases, the event log, the executor (one increment per
django-q2 task) and its task entry points. See ``executor`` for the design."""
