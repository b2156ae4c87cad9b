"""Honest answers: below the relevance floor nothing is cited, the answer says the documents do not cover
the question, and the exchange is counted as unanswered."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant, upload

pytestmark = pytest.mark.integration

BILLING = """# Billing

## Refunds

Refunds are paid back to the original card within five business days after approval.
"""


def test_an_off_topic_question_is_answered_honestly_and_counted(client: TestClient, tenant: Tenant) -> None:
    # Given a project whose only document is about billing, and no language model
    upload(client, tenant, "Billing", BILLING)
    # When a question the documents do not cover is asked, then one they do
    off_topic = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/",
        json={"query": "How do I bake sourdough bread with a crispy crust?"},
        headers=tenant.headers,
    ).json()
    covered = client.post(
        f"/query/v1/projects/{tenant.project_id}/chat/",
        json={"query": "How long do refunds take?"},
        headers=tenant.headers,
    ).json()
    # Then the off-topic answer cites nothing, says the documents do not cover it, and is marked ungrounded
    assert off_topic["sources"] == [] and off_topic["grounded"] is False
    assert "do not cover this question" in off_topic["answer"]
    # And the covered one quotes its passage and is grounded
    assert covered["grounded"] is True and covered["sources"][0]["title"] == "Billing"
    # And the thread history keeps the mark
    thread = client.get(f"/query/v1/threads/{off_topic['thread_id']}/", headers=tenant.headers).json()
    assert thread["messages"][0]["grounded"] is False
    # And analytics count one unanswered question out of two
    answers = client.get(f"/query/v1/projects/{tenant.project_id}/analytics/", headers=tenant.headers).json()
    assert answers["answers"]["questions"] == 2 and answers["answers"]["unanswered"] == 1
