"""How a batch's texts are laid out in model runs (adapters/embeddings.layout): packed rows and runs."""

from __future__ import annotations

import math
import random

import pytest

from threadline.adapters.embeddings import EMBED_GROUP, RUN_TOKENS, layout


def _rows(runs: list[list[list[int]]]) -> list[list[int]]:
    return [row for run in runs for row in run]


@pytest.mark.parametrize("seed", range(5))
def test_packed_rows_hold_every_text_once_within_the_width(seed: int) -> None:
    # Given a batch of short questions, a few passages and one text of exactly the row width
    rng = random.Random(seed)
    lengths = [rng.randint(5, 30) for _ in range(150)] + [rng.randint(65, 256) for _ in range(10)] + [64]
    rng.shuffle(lengths)

    # When they are laid out in rows of 64 word pieces
    runs = layout(lengths, 64)

    # Then every text is in exactly one row
    rows = _rows(runs)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    # and a row holds several texts only within the width, a longer text alone
    for row in rows:
        width = sum(lengths[i] for i in row)
        assert width <= 64 or len(row) == 1, (row, width)
    # and the short texts share rows with little room left: close to the fewest rows their pieces could fill
    short = [row for row in rows if sum(lengths[i] for i in row) <= 64]
    fewest = math.ceil(sum(n for n in lengths if n <= 64) / 64)
    assert len(short) <= 11 / 9 * fewest + 1, (len(short), fewest)
    # and a run holds at most RUN_TOKENS positions (rows x its widest row) unless one row alone is wider
    for run in runs:
        widest = max(sum(lengths[i] for i in row) for row in run)
        assert len(run) * widest <= RUN_TOKENS or len(run) == 1, (len(run), widest)


def test_unpacked_is_one_text_a_row_in_length_order_groups() -> None:
    # Given texts of decreasing length, more than a group
    lengths = list(range(100, 100 - EMBED_GROUP - 5, -1))

    # When they are laid out one a row (the previous model's graph)
    runs = layout(lengths, 0)

    # Then each row is one text, runs of EMBED_GROUP rows, shortest first
    assert [len(run) for run in runs] == [EMBED_GROUP, 5]
    assert all(len(row) == 1 for row in _rows(runs))
    assert [row[0] for row in _rows(runs)] == sorted(range(len(lengths)), key=lambda i: lengths[i])


def test_an_empty_batch_has_no_runs() -> None:
    assert layout([], 64) == [] and layout([], 0) == []
