"""Rolling cluster patching: the read-only preflight (preflight.py) that the patch-cluster runbook
(ops/runbooks/patch_cluster.py) checks before it starts, and that pages and the CLI show."""
