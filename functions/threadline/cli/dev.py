"""The local-cloud subcommands of `threadline`: dev, fire, mail."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from threadline.bootstrap import Container


def configure(sub: Any) -> None:
    """Add `threadline dev`, `threadline fire` and `threadline mail`."""
    dev = sub.add_parser("dev", help="run the whole stack locally (Postgres, moto, API, pollers, schedules)")
    dev.add_argument("--host", default=os.environ.get("THREADLINE_HOST", "127.0.0.1"))
    dev.add_argument("--port", type=int, default=int(os.environ.get("THREADLINE_PORT", "8000")))
    dev.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")))
    dev.add_argument("--template", type=Path, default=None, help="another SAM template (default: template.yaml)")
    dev.add_argument("--no-demo-setup", action="store_true", help="skip the demo hooks (ingesting the docs)")
    dev.set_defaults(func=_dev)
    fire = sub.add_parser("fire", help="fire an EventBridge Scheduler schedule now (in the running dev stack)")
    fire.add_argument("schedule", help="the schedule's name, logical id or SAM event name (e.g. ReportSchedule)")
    fire.set_defaults(func=_fire)
    mail = sub.add_parser("mail", help="list the mail sent through SES in the dev stack (read from its mail folder)")
    mail.set_defaults(func=_mail)


def _dev(args: argparse.Namespace, container: Container) -> object:
    from threadline.local import dev
    from threadline.local.cloud import TEMPLATE

    options = dev.DevOptions(
        host=args.host,
        port=args.port,
        moto_port=args.moto_port,
        local_dir=container.settings.local_dir,
        template=args.template or TEMPLATE,
        demo_setup=not args.no_demo_setup,
    )
    dev.run(options)


def endpoint(container: Container) -> str:
    """The AWS endpoint of the running `threadline dev` (taken on by `cli.main`), or AWS_ENDPOINT_URL."""
    if not container.settings.aws_endpoint_url:
        raise SystemExit("no running `threadline dev` found (start `make dev`, or set AWS_ENDPOINT_URL)")
    return container.settings.aws_endpoint_url


def _fire(args: argparse.Namespace, container: Container) -> object:
    from threadline.local.remote import fire_schedule

    return fire_schedule(endpoint(container), container.settings.aws_region, args.schedule)


def _mail(_: argparse.Namespace, container: Container) -> object:
    from dataclasses import asdict

    from threadline.local.mail import read_folder

    # The running stack writes each sent message to LOCAL_DIR/mail within half a second; reading that folder
    # costs only the mail itself, whatever else the local cloud holds.
    mail = read_folder(container.settings.local_dir / "mail")
    return [{k: v for k, v in asdict(m).items() if k != "raw"} for m in mail]
