"""`make lint`'s dead-code check: every function, class, method and property of `threadline` is used somewhere
(the package, the tests, the benchmarks or the build), as vulture reads the source.

Only those kinds: vulture also reports pydantic fields, `model_config` and response-model attributes, which
FastAPI and pydantic read by name, so variables and attributes would be noise. Names used from outside the
Python source are listed here with the reason. A lint, not a unit test: reading the whole repository takes
vulture about 10 s on the shared 2-core machine.

Run from the repository root: `python -m infra.build.dead_code`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vulture import Vulture

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "threadline"
USERS = [PACKAGE, ROOT / "tests", ROOT / "bench", ROOT / "infra"]

# Called by something that is not Python source of this repository.
USED_ELSEWHERE = [
    "*_handler",  # Lambda handlers: template.yaml's Handler properties
    "handle_starttag",  # html.parser.HTMLParser's callbacks (domain/parsing.py)
    "handle_endtag",
    "handle_data",
    "get_remaining_time_in_millis",  # the Lambda context's API, called by Powertools (local/worker.py)
]
# Routes, tools and validators are called by their framework, through the decorator.
DECORATORS = ["@router.*", "@app.*", "@*.tool", "@field_validator", "@model_validator"]
KINDS = {"function", "class", "method", "property"}


def unused(package: Path, users: list[Path]) -> list[str]:
    """The functions, classes, methods and properties defined under `package` that nothing in `users` uses."""
    vulture = Vulture(ignore_names=USED_ELSEWHERE, ignore_decorators=DECORATORS)
    vulture.scavenge([str(p) for p in users])
    return sorted(
        f"{Path(item.filename).relative_to(package.parent)}:{item.first_lineno}: unused {item.typ} {item.name}"
        for item in vulture.get_unused_code()
        if item.typ in KINDS and Path(item.filename).is_relative_to(package)
    )


def main() -> int:
    """Print each unused definition; exit 1 if there is any."""
    found = unused(PACKAGE, USERS)
    for line in found:
        print(line)  # noqa: T201 - the lint's output is its report
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
