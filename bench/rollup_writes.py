"""What keeping the analytics rollups costs the writers: the chat's two writes, bulk labels, COPY.

    python -m bench.rollup_writes --exchanges 2000

On a fresh database, times the real adapters with the rollup triggers of migration 0007 on and off
(`ALTER TABLE ... DISABLE TRIGGER USER`), in alternating rounds so that drift hits both alike:
- the chat's question write (a new thread and its pending question, one pipelined transaction) and its
  answer write (status, latency, tokens), per exchange;
- a classifier batch of 256 automatic labels;
- a COPY of 50,000 threads.
Neither chat write is on the way to the first token: the question is written while the model starts, the
answer after the last token. The figure to watch is the added milliseconds per write.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bench.labelling_support import bench_database, bench_settings, new_project
from threadline.adapters.postgres.chat import PostgresChat
from threadline.bootstrap import Container
from threadline.domain.chat import Outcome
from threadline.domain.ports import LabelDecision

_TABLES = ("threads", "messages")


def _set_triggers(url: str, enabled: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in _TABLES:
            conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _exchanges(
    chat: PostgresChat, project_id: uuid.UUID, n: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    asked: list[float] = []
    answered: list[float] = []
    for i in range(n):
        thread_id, message_id = uuid.uuid4(), uuid.uuid4()
        outcome = Outcome(
            answer="An answer.", latency_ms=rng.randrange(300, 9000), first_token_ms=rng.randrange(80, 900)
        )
        started = time.perf_counter()
        chat.record_question(project_id, thread_id, message_id, f"q{i}", new_thread=True)
        middle = time.perf_counter()
        chat.finish_exchange(message_id, outcome)
        asked.append((middle - started) * 1000)
        answered.append((time.perf_counter() - middle) * 1000)
    return asked, answered


def _label_batch(container: Container, project_id: uuid.UUID, categories: list[uuid.UUID], rng: random.Random) -> float:
    with container.db.transaction() as conn:
        rows = conn.execute(
            "SELECT id FROM threads WHERE project_id = %(p)s ORDER BY random() LIMIT 256", {"p": project_id}
        ).fetchall()
    decisions = [LabelDecision(r["id"], rng.choice(categories), 0.8, "bench") for r in rows]
    return _timed(lambda: container.labels.apply_auto_labels(project_id, decisions))


def _copy(url: str, project_id: uuid.UUID, n: int) -> float:
    start = datetime.now(UTC) - timedelta(days=365)
    block = io.StringIO()
    for i in range(n):
        block.write(f"{uuid.uuid4().hex}\t{project_id}\tq\t1\t{(start + timedelta(seconds=631 * i)).isoformat()}\n")
    text = block.getvalue()

    def load() -> None:
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy("COPY threads (id, project_id, first_question, message_count, created_at) FROM STDIN") as c:
                c.write(text)

    return _timed(load)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    return f"p50 {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms"


def main(argv: list[str] | None = None) -> None:
    """Time the writers with and without the rollup triggers and print both."""
    parser = argparse.ArgumentParser(prog="python -m bench.rollup_writes", description=__doc__)
    parser.add_argument("--exchanges", type=int, default=2000, help="chat exchanges per mode")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of on and off")
    args = parser.parse_args(argv)
    rng = random.Random(5)
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            project = new_project(container, "rollup writes")
            categories = [c.id for c in container.categories.list_categories(project)]
            chat = PostgresChat(container.db)
            asked: dict[bool, list[float]] = {True: [], False: []}
            answered: dict[bool, list[float]] = {True: [], False: []}
            labels: dict[bool, list[float]] = {True: [], False: []}
            copies: dict[bool, list[float]] = {True: [], False: []}
            per_round = max(args.exchanges // args.rounds, 1)
            _exchanges(chat, project, 50, rng)  # warm the pool, the plans and the buffers
            for _ in range(args.rounds):
                for enabled in (True, False):
                    _set_triggers(url, enabled)
                    a, b = _exchanges(chat, project, per_round, rng)
                    asked[enabled] += a
                    answered[enabled] += b
                    labels[enabled] += [_label_batch(container, project, categories, rng) for _ in range(5)]
                    copies[enabled].append(_copy(url, project, 50_000 // args.rounds))
            _set_triggers(url, True)
        finally:
            container.close()
    print(f"rollup write cost, {per_round * args.rounds} exchanges per mode, {args.rounds} alternating rounds:")
    for name, samples in (("question write", asked), ("answer write", answered), ("256 auto labels", labels)):
        added = statistics.median(samples[True]) - statistics.median(samples[False])
        print(f"  {name}: with rollups {_ms(samples[True])}; without {_ms(samples[False])}; {added:+.2f} ms")
    on, off = sum(copies[True]), sum(copies[False])
    print(f"  COPY of 50,000 threads: with rollups {on / 1000:.2f} s, without {off / 1000:.2f} s")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
