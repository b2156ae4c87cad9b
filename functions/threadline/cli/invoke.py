"""`threadline invoke FUNCTION -e EVENT.json`: one function, once, as `sam local invoke` does, without Docker."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from threadline.bootstrap import Container
from threadline.cli.dev import endpoint


def configure(sub: Any) -> None:
    """Add `threadline invoke`."""
    invoke = sub.add_parser(
        "invoke", help="invoke one function once, as `sam local invoke` does, without Docker (see the README)"
    )
    invoke.add_argument("function", help="the function's logical id in the template, e.g. ClassifierFunction")
    invoke.add_argument("-e", "--event", type=Path, default=None, help="the event JSON file (default: {})")
    source = invoke.add_mutually_exclusive_group()
    source.add_argument("--package", type=Path, default=None, help="the packaged artifact (default: build/package)")
    source.add_argument("--source", action="store_true", help="run functions/ with this virtualenv's Python")
    invoke.add_argument("--endpoint", default=None, help="the AWS endpoint (default: the running `make dev`)")
    invoke.add_argument("--template", type=Path, default=None, help="another SAM template (default: template.yaml)")
    invoke.set_defaults(func=_invoke)


def _invoke(args: argparse.Namespace, container: Container) -> object:
    from threadline.local import invoke_command
    from threadline.local.cloud import TEMPLATE

    package = None if args.source else (args.package or invoke_command.default_package())
    options = invoke_command.InvokeOptions(
        function=args.function,
        event_path=args.event,
        endpoint=args.endpoint or endpoint(container),
        database_url=container.settings.database_url,
        package=package,
        template=args.template or TEMPLATE,
        region=container.settings.aws_region,
    )
    code = invoke_command.run(options)
    if code:
        raise SystemExit(code)
    return None
