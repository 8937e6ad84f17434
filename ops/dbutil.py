"""Database helpers the engine's hot path needs.

``update_rows`` writes the same fields of many rows: one ``UPDATE ... WHERE id = %s``
statement, executed for every row with ``executemany``. Django's ``bulk_update``
builds a ``CASE WHEN`` expression per field per row instead, which costs more
CPU than the database work: 0.47 s for 311 steps x 9 fields on SQLite (0.63 s on
PostgreSQL) against 0.02-0.05 s here. Values go through each field's own
``get_db_prep_save``, so JSON, dates and the rest are stored as Django would.

``in_pool_thread`` wraps work handed to a long-lived thread pool (ops/engine/steps.py,
ops/runbooks/patch_steps.py): a connection the work opened is closed when it ends, so a pool
thread never holds an idle database session for the life of the worker (one per thread per
worker adds up on PostgreSQL) and never finds one gone stale after a database restart.
"""
from __future__ import annotations

import typing

from django.db import connections, router


def in_pool_thread(fn, *args):
    """``fn(*args)``, then this thread's database connections closed (a no-op when none opened)."""
    try:
        return fn(*args)
    finally:
        connections.close_all()


def update_rows(model, objs: typing.Sequence, fields: typing.Sequence[str]) -> int:
    if not objs or not fields:
        return 0
    db = router.db_for_write(model)
    connection = connections[db]
    quote = connection.ops.quote_name
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in concrete)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    rows = [[f.get_db_prep_save(getattr(obj, f.attname), connection) for f in concrete] + [obj.pk] for obj in objs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(rows)
