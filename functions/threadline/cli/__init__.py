"""The `threadline` command: the local stack, administration, and operator tasks.

`main.py` builds the parser from an explicit list of modules; each module's `configure(subparsers)` adds its
subcommands and sets `func=` (called with the parsed arguments and the container) on each of them. No module
registers itself on import and none imports `main`, so the package has no import cycle
(tests/unit/test_import_cycles.py).
"""

from threadline.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
