"""``manage.py bench NAME [options]``: run one benchmark, print one JSON line.

Benchmarks live in ``ops/bench/<name>.py`` and expose ``add_arguments(parser)``
and ``run(options) -> dict``. They start what they need (simulator, worker,
ASGI server) themselves and measure the real path.
"""
import importlib
import json
import pkgutil

from django.core.management.base import BaseCommand, CommandError

import ops.bench


def _names():
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(ops.bench.__path__) if not m.name.startswith("_"))


class Command(BaseCommand):
    help = "Run a benchmark and print one JSON line of figures."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
        for name in _names():
            module = importlib.import_module(f"ops.bench.{name.replace('-', '_')}")
            p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None)
            module.add_arguments(p)

    def handle(self, *args, **options):
        name = options["bench"]
        if name not in _names():
            raise CommandError(f"unknown benchmark {name!r}; known: {', '.join(_names())}")
        module = importlib.import_module(f"ops.bench.{name.replace('-', '_')}")
        result = module.run(options)
        self.stdout.write(json.dumps({"bench": name, **result}, sort_keys=False))
