"""Run every registered benchmark at its default size: `python -m bench [name ...]`."""

from __future__ import annotations

import importlib
import sys
import time

from bench import BENCHMARKS


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all of them when none is named)."""
    names = argv or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names:
        print(f"\n=== bench.{name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main([])
        print(f"=== bench.{name} finished in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
