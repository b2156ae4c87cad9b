"""MigrateFunction: applies the SQL migrations shipped with the code, from inside the VPC.

CloudFormation calls it through the DatabaseMigrations custom resource on every deploy that changes the code;
an operator may invoke it with `{}` to migrate without a deploy. Delete does nothing: the schema and its data
outlive the stack. Every outcome is answered to CloudFormation, and nothing is raised, so a failed migration
fails (and rolls back) the deploy at once instead of leaving the stack waiting.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from threadline import startup
from threadline.adapters.aws.custom_resource import CustomResourceRequest, send_response
from threadline.observability import logger
from threadline.settings import get_settings

PHYSICAL_ID = "threadline-database-migrations"


def apply_migrations() -> list[str]:
    """Apply what is pending in Settings.migrations_dir to DATABASE_URL; the names applied now."""
    # The driver (psycopg) arrives with the first migration, not with the handler's import (cold start).
    from threadline.adapters.postgres.migrate import migrate

    settings = get_settings()
    return migrate(settings.database_url, settings.migrations_dir)


def _answer(request: CustomResourceRequest) -> dict[str, Any]:
    if request.request_type == "Delete":
        return request.response("SUCCESS", PHYSICAL_ID, "nothing to undo: the schema outlives the stack")
    try:
        applied = apply_migrations()
    except Exception as exc:
        # The reason reaches the stack events; driver messages name the host at most, never the password.
        logger.exception("migrations failed")
        return request.response("FAILED", PHYSICAL_ID, f"migrations failed: {type(exc).__name__}: {exc}")
    data = {"Applied": str(len(applied)), "Last": applied[-1] if applied else ""}
    return request.response("SUCCESS", PHYSICAL_ID, f"{len(applied)} migration(s) applied", data)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """A custom resource request is answered to CloudFormation; any other event just migrates."""
    if "RequestType" not in event:
        applied = apply_migrations()
        logger.info("migrations applied", extra={"applied": applied})
        return {"applied": applied}
    request = CustomResourceRequest.from_event(event)
    body = _answer(request)
    delivered = send_response(request.response_url, body)
    logger.info(
        "custom resource answered",
        extra={"request_type": request.request_type, "status": body["Status"], "delivered": delivered},
    )
    return {"Status": body["Status"], "Reason": body["Reason"], "Data": body["Data"], "delivered": delivered}


# Last: every module this function needs is loaded (threadline/startup.py).
startup.complete()
