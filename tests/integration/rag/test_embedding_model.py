"""The model `make model` builds computes all-MiniLM-L6-v2: checked against the published fp32 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.build.minilm_reference import embed, load_weights
from threadline.adapters.embeddings import DIMENSIONS, MAX_TOKENS, OnnxMiniLM, layout
from threadline.settings import Settings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE_WEIGHTS = REPO_ROOT / "build" / "model" / "model.safetensors"

SENTENCES = [
    "Is there a way to export all my invoices at once?",
    "The mobile app crashes when I open the settings page.",
    "What does the enterprise plan include?",
    "How do I add a teammate to my workspace?",
    "Payments made by bank transfer take two to three business days to show up; card payments are "
    "instant. If a payment is still missing after a week, contact support with the transfer reference.",
]


def test_the_built_model_matches_the_fp32_reference(tokenizer_path: Path) -> None:
    # Given the model the settings point at, and the reference: the published weights through numpy
    model = OnnxMiniLM(tokenizer_path, Settings().embedding_model_path)
    weights = load_weights(REFERENCE_WEIGHTS)

    # When both embed the same sentences
    got = model.embed(SENTENCES)
    want = embed(weights, model.tokenizer, SENTENCES)

    # Then the int8 model stays within the bound the issue sets (mean cosine >= 0.99), none far off
    cosines = (got * want).sum(axis=1)
    assert cosines.mean() >= 0.99, cosines
    assert cosines.min() >= 0.97, cosines
    # and a different sentence is clearly further away than the quantization error
    assert float(got[0] @ want[1]) < 0.9


def test_embeddings_have_the_shape_and_norm_the_store_expects(tokenizer_path: Path) -> None:
    # Given the runtime model
    model = OnnxMiniLM(tokenizer_path, Settings().embedding_model_path)

    # When it embeds a batch mixing a short question and a text past the model's window, and nothing
    batch = model.embed(["hi", "word " * (MAX_TOKENS * 2)])
    empty = model.embed([])

    # Then there is one float32 unit vector of 384 dimensions per text (pgvector's column), none for none
    assert batch.shape == (2, DIMENSIONS) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert empty.shape == (0, DIMENSIONS)


def test_a_batch_run_in_packed_rows_keeps_every_vector_at_its_text(
    tokenizer_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the runtime model packing texts into rows of 40 word pieces, runs of two such rows
    from threadline.adapters import embeddings

    monkeypatch.setattr(embeddings, "RUN_TOKENS", 80)
    model = OnnxMiniLM(tokenizer_path, Settings().embedding_model_path, pack_tokens=40)
    weights = load_weights(REFERENCE_WEIGHTS)
    # longest first and shortest last, so the layout moves every text to another place
    texts = [*sorted(SENTENCES, key=len, reverse=True), "refund", "Can I pay by invoice?"]
    assert len(embeddings.layout(model.count_tokens(texts), 40)) > 1  # several runs, rows shared

    # When the whole batch is embedded at once
    got = model.embed(texts)

    # Then row i is text i's vector (the fp32 reference of that text, within int8's error) and no other's
    want = embed(weights, model.tokenizer, texts)
    similarity = got @ want.T
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all(), similarity
    assert np.diag(similarity).min() >= 0.97, similarity


def test_packed_texts_do_not_see_each_other(tokenizer_path: Path) -> None:
    # Given the fp32 graph the model is quantized from (the same inputs, no int8 noise) and the numpy forward
    fp32 = REPO_ROOT / "build" / "model" / "all-MiniLM-L6-v2.fp32.onnx"
    packed = OnnxMiniLM(tokenizer_path, fp32)
    alone = OnnxMiniLM(tokenizer_path, fp32, pack_tokens=0)
    texts = [*SENTENCES[:4], "refund", "Can I pay by invoice?", "hi"]

    # When short texts are embedded packed side by side in shared rows, and each in a row of its own
    assert any(len(row) > 1 for run in layout(packed.count_tokens(texts), 64) for row in run)
    side_by_side = packed.embed(texts)
    one_a_row = alone.embed(texts)

    # Then both are the BERT forward of each text alone: packing changes no vector beyond float rounding
    want = embed(load_weights(REFERENCE_WEIGHTS), packed.tokenizer, texts)
    assert (side_by_side * want).sum(axis=1).min() > 0.99999
    assert (one_a_row * want).sum(axis=1).min() > 0.99999


def test_the_built_model_runs_as_built_and_any_other_file_is_optimized_at_load() -> None:
    import onnxruntime as ort

    from threadline.adapters.embeddings import open_session

    # Given the file `make model` writes (its graph optimized at build) and the fp32 graph it came from
    built = open_session(Settings().embedding_model_path, threads=1)
    reference = open_session(REPO_ROOT / "build" / "model" / "all-MiniLM-L6-v2.fp32.onnx", threads=1)

    # Then the built one runs with the optimizers off (they would fuse its LayerNorms back), the other with all
    levels = [s.get_session_options().graph_optimization_level for s in (built, reference)]
    assert levels == [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]


def test_embedding_threads_reach_the_batch_model_and_the_chat_model_keeps_one() -> None:
    from threadline.bootstrap import Container

    # Given a function configured with EMBEDDING_THREADS=1 (several local workers sharing two cores),
    # and one left at the default
    pinned = Container(Settings(embedding_threads=1))
    default = Container(Settings(embedding_threads=0))

    # Then the batch model runs on one intra-op thread where asked and on onnxruntime's choice otherwise,
    # and the chat path's single-question model is on one thread either way
    assert pinned.embedder.intra_op_threads == 1
    assert default.embedder.intra_op_threads == 0
    assert pinned.query_embedder.intra_op_threads == default.query_embedder.intra_op_threads == 1
