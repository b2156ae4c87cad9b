# Over 350 lines: PRODUCTS to FOLLOW_UPS (about 130 lines) are the vocabulary the generator combines; kept beside it.
"""Demo and benchmark data: realistic threads and messages, written with COPY (a million threads in about a minute).

First questions are built combinatorially (kind x template x product x feature or error, with greetings
and sign-offs), so they vary like real traffic; timestamps spread over months with a working-hours bias;
some threads are already labelled automatically, a few by users. Every thread has its messages rows
(one per exchange) with plausible token counts and latencies, so the analytics have data too.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any, LiteralString
from uuid import UUID

import numpy as np
import numpy.typing as npt

from threadline.adapters.postgres.analytics import PostgresAnalytics
from threadline.adapters.postgres.db import Database
from threadline.domain import tenancy

CHUNK = 50_000
_THREADS_COPY: LiteralString = (
    "COPY threads (id, project_id, first_question, message_count, category_id, label_source,"
    " label_confidence, label_model, labelled_at, created_at, updated_at) FROM STDIN"
)
_MESSAGES_COPY: LiteralString = (
    "COPY messages (thread_id, project_id, question, answer, status, model, prompt_tokens,"
    " completion_tokens, latency_ms, first_token_ms, retrieval_score, created_at, completed_at) FROM STDIN"
)
LABEL_MODEL = "embedding:all-MiniLM-L6-v2-onnx-int8"

PRODUCTS = (
    "the dashboard",
    "the mobile app",
    "the API",
    "the Python SDK",
    "the CLI",
    "the web widget",
    "the Slack app",
    "the billing portal",
    "the admin console",
    "the reporting module",
    "the Zapier integration",
    "the desktop app",
)
FEATURES = (
    "single sign-on",
    "two-factor authentication",
    "CSV export",
    "webhooks",
    "custom domains",
    "team roles",
    "audit logs",
    "scheduled reports",
    "API keys",
    "dark mode",
    "data retention",
    "email notifications",
    "bulk import",
    "the search index",
    "custom fields",
    "rate limits",
    "IP allow-lists",
    "usage alerts",
    "multi-language answers",
    "document uploads",
    "SAML",
    "the sandbox environment",
    "invoices",
    "tags",
)
ERRORS = (
    "a 500 Internal Server Error",
    "a 403 Forbidden",
    "a timeout after 30 seconds",
    "'invalid token'",
    "a blank white page",
    "'connection reset by peer'",
    "a CORS error",
    "'quota exceeded'",
    "a 429 Too Many Requests",
    "'signature mismatch'",
    "an SSL handshake failure",
    "'file too large'",
    "a spinning loader forever",
    "'unexpected end of JSON input'",
    "duplicate entries",
    "missing rows",
    "a crash on startup",
    "a 404 Not Found",
)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "how_to": (
        "How do I set up {feature} in {product}?",
        "Is there a way to turn on {feature} from {product}?",
        "Where can I find the settings for {feature} in {product}?",
        "Can {product} do {feature}, and how do I enable it?",
        "What is the best way to configure {feature} for my whole team in {product}?",
        "Does {product} support {feature}? I could not find it in the docs.",
        "Step by step, how do I get started with {feature} using {product}?",
        "How can I use {feature} together with {product}?",
    ),
    "error": (
        "I get {error} when I open {product}.",
        "{product} keeps returning {error} since this morning.",
        "Why does {product} show {error} when I try to use {feature}?",
        "After the last update {product} fails with {error}.",
        "Every time I enable {feature} in {product} I see {error}.",
        "Our integration with {product} broke: {error} on every request.",
        "Getting {error} from {product} while saving {feature} settings, what is wrong?",
    ),
    "billing": (
        "Why was I charged twice this month for {product}?",
        "How do I change the card on file for {product}?",
        "Can I get an invoice with our VAT number for {feature}?",
        "Is {feature} included in the Pro plan or is it extra?",
        "How do I downgrade my plan without losing {feature}?",
        "We were billed for seats we removed, can you refund them?",
    ),
    "feature_request": (
        "It would be great if {product} had {feature}.",
        "Any plans to add {feature} to {product}?",
        "Please add {feature} to {product}, our team really needs it.",
        "Could {product} support {feature} for enterprise accounts?",
    ),
}
KIND_WEIGHTS = {"how_to": 0.42, "error": 0.38, "billing": 0.12, "feature_request": 0.08}
OPENERS = ("", "", "", "Hi, ", "Hello! ", "Hey team, ", "Quick question: ", "Hi there. ", "Good morning, ")
_FIRST_GREETING = 3  # OPENERS before this index are empty
CLOSERS = ("", "", "", " Thanks!", " Thank you.", " Any idea?", " This is urgent.", " Cheers.", " Please help.")
FOLLOW_UPS = (
    "That did not work, what else can I try?",
    "Thanks, and how do I do the same for my team?",
    "Can you link the documentation page?",
    "Is there an API for that?",
    "It works now, thank you!",
    "I still see the same error.",
    "Where exactly is that setting?",
    "Does that also apply to the mobile app?",
)
ANSWERS = (
    "Open Settings, then Integrations, and follow the steps in the setup guide; changes apply within a minute.",
    "This usually means the token expired. Create a new key under API keys and retry the request.",
    "Yes, it is available on every plan. You can enable it for your workspace from the admin console.",
    "I could not find this in the documentation. Please contact support with the request id from the error.",
    "Clear the cache of the app and sign in again; if it persists, check the status page for incidents.",
    "Invoices are in the billing portal under History; you can add your VAT number there before downloading.",
)
EXTRA_CATEGORIES = (
    tenancy.DefaultCategory(
        "Billing",
        "Questions about invoices, charges, refunds, payment methods and plans.",
        ("Why was I charged twice?", "How do I update my card?", "Can I get a refund?"),
    ),
    tenancy.DefaultCategory(
        "Feature request",
        "A user asking for a capability the product does not have yet.",
        ("Please add dark mode", "Any plans to support SAML?", "It would be great to have webhooks"),
    ),
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What was written."""

    teams: int
    projects: int
    threads: int
    messages: int
    seconds: float


def _expand(template: str) -> list[str]:
    # Only the placeholders a template uses are varied, so every combination is a distinct question.
    fields = {"product": PRODUCTS, "feature": FEATURES, "error": ERRORS}
    used = [name for name in fields if "{" + name + "}" in template]
    return [template.format(**dict(zip(used, values, strict=True))) for values in product(*(fields[u] for u in used))]


def question_pools() -> dict[str, list[str]]:
    """Every distinct question of each kind, for sampling by index."""
    return {
        kind: [q[0].upper() + q[1:] for template in TEMPLATES[kind] for q in _expand(template)] for kind in KIND_WEIGHTS
    }


def question_pool() -> list[str]:
    """Every distinct question, kind after kind."""
    return [q for pool in question_pools().values() for q in pool]


def _kind_bounds() -> list[int]:
    bounds = [0]
    for pool in question_pools().values():
        bounds.append(bounds[-1] + len(pool))
    return bounds


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    # 32 hex digits is valid uuid input for Postgres; generating them in bulk is ~10x faster than uuid4().
    raw = rng.bytes(16 * n).hex()
    return [raw[i : i + 32] for i in range(0, 32 * n, 32)]


def _timestamps(rng: np.random.Generator, n: int, days: int, now: datetime) -> npt.NDArray[np.int64]:
    # Seconds since the epoch: uniform over the days, most traffic between 08:00 and 20:00 UTC.
    start = int((now - timedelta(days=days)).timestamp())
    day = rng.integers(0, days, n) * 86_400
    hour = np.where(rng.random(n) < 0.8, rng.integers(8, 20, n), rng.integers(0, 24, n)) * 3600
    return np.asarray(start + day + hour + rng.integers(0, 3600, n), dtype=np.int64)


def _iso(seconds: npt.NDArray[Any]) -> list[str]:
    text: list[str] = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    return text


class Seeder:
    """Writes teams, projects (with categories), threads and messages."""

    def __init__(self, db: Database, tenancy_repo: tenancy.TenancyRepository, seed: int = 7) -> None:
        self._db = db
        self._tenancy = tenancy_repo
        self._rng = np.random.default_rng(seed)
        self._pool = question_pool()
        # After a greeting the question goes on in lower case ("Hi, how do I ...").
        self._pool_after_opener = [q[0].lower() + q[1:] if not q.startswith(("API", "CSV")) else q for q in self._pool]
        self._bounds = _kind_bounds()

    def create_projects(self, projects: int) -> list[tuple[UUID, list[UUID]]]:
        """One team per three projects; each project gets the default categories plus billing and requests."""
        created: list[tuple[UUID, list[UUID]]] = []
        team_id: UUID | None = None
        for index in range(projects):
            if index % 3 == 0:
                team_id = tenancy.create_team(self._tenancy, f"Seed team {index // 3 + 1}").id
            assert team_id is not None
            project = tenancy.create_project(self._tenancy, team_id, f"Seed project {index + 1}")
            created.append((project.id, self._add_categories(project.id)))
        return created

    def _add_categories(self, project_id: UUID) -> list[UUID]:
        with self._db.transaction() as conn:
            for category in EXTRA_CATEGORIES:
                conn.execute(
                    "INSERT INTO categories (project_id, name, description, examples)"
                    " VALUES (%(project_id)s, %(name)s, %(description)s, %(examples)s)",
                    {
                        "project_id": project_id,
                        "name": category.name,
                        "description": category.description,
                        "examples": list(category.examples),
                    },
                )
            rows = conn.execute(
                "SELECT id FROM categories WHERE project_id = %(project_id)s ORDER BY name", {"project_id": project_id}
            ).fetchall()
        return [r["id"] for r in rows]

    def seed(self, threads: int, projects: int, days: int = 180) -> SeedResult:
        """Create `projects` projects and `threads` threads spread over them (a few big, many small)."""
        started = datetime.now(UTC)
        created = self.create_projects(projects)
        weights = 1.0 / np.arange(1, projects + 1) ** 0.8
        owner = self._rng.choice(projects, size=threads, p=weights / weights.sum())
        messages = 0
        unchecked = self._can_skip_fk_checks()
        # Python builds chunk k+1 while Postgres ingests chunk k; when the messages' foreign-key checks can be
        # skipped (the rows are consistent by construction), threads and messages load on two backends at once.
        with ThreadPoolExecutor(max_workers=2) as pool:
            in_flight: list[Future[None]] = []
            for first in range(0, threads, CHUNK):
                size = min(CHUNK, threads - first)
                thread_block, message_block, count = self._chunk(owner[first : first + size], created, days, started)
                for future in in_flight:
                    future.result()
                if unchecked:
                    in_flight = [
                        pool.submit(self._copy, _THREADS_COPY, thread_block, True),
                        pool.submit(self._copy, _MESSAGES_COPY, message_block, True),
                    ]
                else:
                    in_flight = [pool.submit(self._copy_in_order, thread_block, message_block)]
                messages += count
            for future in in_flight:
                future.result()
        if unchecked:
            # Replica mode skipped the analytics triggers too: count the new rows into the rollups at once.
            PostgresAnalytics(self._db).recount([p for p, _ in created])
        return SeedResult(
            teams=(projects + 2) // 3,
            projects=projects,
            threads=threads,
            messages=messages,
            seconds=(datetime.now(UTC) - started).total_seconds(),
        )

    def _questions(self, n: int) -> list[str]:
        rng = self._rng
        kinds = rng.choice(len(KIND_WEIGHTS), size=n, p=list(KIND_WEIGHTS.values()))
        low = np.array(self._bounds[:-1])[kinds]
        high = np.array(self._bounds[1:])[kinds]
        picks = (low + (rng.random(n) * (high - low)).astype(np.int64)).tolist()
        openers = rng.integers(0, len(OPENERS), n).tolist()
        closers = rng.integers(0, len(CLOSERS), n).tolist()
        plain, lowered = self._pool, self._pool_after_opener
        return [
            OPENERS[o] + (lowered[p] if o >= _FIRST_GREETING else plain[p]) + CLOSERS[c]
            for p, o, c in zip(picks, openers, closers, strict=True)
        ]

    def _chunk(
        self, owner: npt.NDArray[np.int64], created: list[tuple[UUID, list[UUID]]], days: int, now: datetime
    ) -> tuple[str, str, int]:
        rng, n = self._rng, len(owner)
        ids = _hex_ids(rng, n)
        questions = self._questions(n)
        counts = rng.choice(np.arange(1, 7, dtype=np.int64), size=n, p=[0.7, 0.18, 0.07, 0.03, 0.012, 0.008])
        created_s = _timestamps(rng, n, days, now)
        gaps = rng.integers(40, 600, n)  # seconds between the exchanges of a thread
        updated_s = created_s + (counts - 1) * gaps + 5
        label = rng.random(n)  # < 0.10: auto, < 0.13: user, else unlabelled
        category_pick = rng.integers(0, 1 << 30, n).tolist()
        confidence = np.round(rng.uniform(0.35, 0.99, n), 3).tolist()
        created_iso, updated_iso = _iso(created_s), _iso(updated_s)
        labelled_iso = _iso(created_s + rng.integers(1, 30, n))
        project_ids = [str(p) for p, _ in created]
        categories = [[str(c) for c in cats] for _, cats in created]
        owners = owner.tolist()
        lines: list[str] = []
        for i in range(n):
            cats = categories[owners[i]]
            if label[i] < 0.10:
                tail = f"{cats[category_pick[i] % len(cats)]}\tauto\t{confidence[i]}\t{LABEL_MODEL}\t{labelled_iso[i]}"
            elif label[i] < 0.13:
                tail = f"{cats[category_pick[i] % len(cats)]}\tuser\t\\N\t\\N\t{labelled_iso[i]}"
            else:
                tail = "\\N\t\\N\t\\N\t\\N\t\\N"
            lines.append(
                f"{ids[i]}\t{project_ids[owners[i]]}\t{questions[i]}\t{counts[i]}\t{tail}"
                f"\t{created_iso[i]}\t{updated_iso[i]}\n"
            )
        message_block, messages = self._messages(
            ids, [project_ids[o] for o in owners], questions, counts, created_s, gaps
        )
        return "".join(lines), message_block, messages

    def _messages(
        self,
        ids: list[str],
        projects: list[str],
        questions: list[str],
        counts: npt.NDArray[np.int64],
        created_s: npt.NDArray[np.int64],
        gaps: npt.NDArray[np.int64],
    ) -> tuple[str, int]:
        rng = self._rng
        thread_index = np.repeat(np.arange(len(ids)), counts)
        m = len(thread_index)
        ordinal = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)
        asked = created_s[thread_index] + ordinal * gaps[thread_index]
        latency = np.clip(rng.lognormal(7.2, 0.5, m), 300, 30_000).astype(np.int64)
        first_token = np.clip((latency * rng.uniform(0.1, 0.4, m)).astype(np.int64), 120, None)
        state = rng.random(m)
        asked_iso, done_iso = _iso(asked), _iso(asked + latency // 1000)
        prompt = rng.integers(300, 2500, m).tolist()
        completion = rng.integers(40, 600, m).tolist()
        score = np.round(rng.uniform(0.25, 0.92, m), 3).tolist()
        follow = rng.integers(0, len(FOLLOW_UPS), m).tolist()
        answer = rng.integers(0, len(ANSWERS), m).tolist()
        latency_l, first_l, ti, ordl = latency.tolist(), first_token.tolist(), thread_index.tolist(), ordinal.tolist()
        lines: list[str] = []
        for j in range(m):
            t = ti[j]
            question = questions[t] if ordl[j] == 0 else FOLLOW_UPS[follow[j]]
            status = "complete" if state[j] < 0.95 else ("incomplete" if state[j] < 0.99 else "failed")
            lines.append(
                f"{ids[t]}\t{projects[t]}\t{question}\t{ANSWERS[answer[j]]}\t{status}\tgpt-4o-mini\t{prompt[j]}"
                f"\t{completion[j]}\t{latency_l[j]}\t{first_l[j]}\t{score[j]}\t{asked_iso[j]}\t{done_iso[j]}\n"
            )
        return "".join(lines), m

    def _can_skip_fk_checks(self) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        return bool(row and row["rolsuper"])

    def _copy_in_order(self, thread_block: str, message_block: str) -> None:
        self._copy(_THREADS_COPY, thread_block, False)
        self._copy(_MESSAGES_COPY, message_block, False)

    def _copy(self, statement: LiteralString, block: str, unchecked: bool) -> None:
        with self._db.transaction() as conn, conn.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            if unchecked:
                # Replica mode skips the per-row foreign-key triggers (superusers only; checked above), and
                # the analytics triggers with them, which seed() makes up for with one recount at the end.
                cur.execute("SET LOCAL session_replication_role = replica")
            with cur.copy(statement) as copy:
                copy.write(block)
