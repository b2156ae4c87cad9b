"""Benchmarks that print their figures. `python -m bench` (make bench) runs every module in BENCHMARKS.

Each module has `main(argv: list[str] | None = None) -> None` and can also be run alone
(`python -m bench.<name> --help`). Targets are printed next to the figures, never asserted in tests.
"""

from __future__ import annotations

# Module names under bench/, in the order `make bench` runs them.
BENCHMARKS: list[str] = [
    "backfill",
    "metrics",
    "chat",
    "partitions",
    "search_sizes",
    "listing",
    "classify_throughput",
    "classify_ttft",
    "classify_accuracy",
    "reports",
    "rollup_writes",
    "local_runtime",
    "soak",
    "reach",
    "embedding",
    "coldstart",
]
