"""LiteRT in one place: load a `.tflite` model, (de)quantise its input and output, run a batch, time it, list its
ops. Used by the parity gate, the export report, evaluation and the benchmarks.

NumPy and `ai_edge_litert` only (no TensorFlow), so a benchmark process that times a file starts in about a second.
The op lists are read from the flatbuffer through the TFLite schema that `ai_edge_litert` ships
(`schema_py_generated`, the same schema `export.metadata` writes), not through the interpreter's private
`_get_ops_details`.
"""
from __future__ import annotations

import collections
import os

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from export.errors import ExportError
from export.timing import timed

Model = bytes | str | os.PathLike
IO_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
"""Ops that only (de)quantise tensors: allowed in float in an integer model (its float I/O)."""
_OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def load(model: Model, num_threads: int | None = None) -> Interpreter:
    """An `ai_edge_litert` Interpreter (XNNPACK on by default) of a flatbuffer or a file, tensors allocated."""
    in_memory = isinstance(model, (bytes, bytearray))
    source = {"model_content": bytes(model)} if in_memory else {"model_path": os.fspath(model)}
    try:
        interpreter = Interpreter(**source, num_threads=num_threads)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"Not a valid TFLite model ({err}). Re-export it with keras-mlp-export.") from err
    interpreter.allocate_tensors()
    return interpreter


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float `x` in the dtype of tensor `detail` (an input detail): scaled, rounded and clipped when quantised."""
    scale, zero = detail["quantization"]
    if not scale:
        return np.asarray(x).astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(np.asarray(x) / scale + zero), info.min, info.max).astype(detail["dtype"])


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    """Tensor values `q` (of tensor `detail`, e.g. the output) as float32."""
    scale, zero = detail["quantization"]
    return q.astype(np.float32) if not scale else (q.astype(np.float32) - zero) * scale


def run(model: Model | Interpreter, images: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Float outputs of `images` (N, H, W, C; float, as the model's float input takes them) through input 0 and
    output 0 of the model, (de)quantised at the I/O. Static signatures run in chunks of their batch (the last one
    padded), dynamic ones (-1 batch) in one call resized to N."""
    it = model if isinstance(model, Interpreter) else load(model, num_threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    images = np.asarray(images, np.float32)
    if tuple(inp["shape"][1:]) != images.shape[1:]:
        raise ExportError(f"TFLite model expects images of shape {tuple(int(v) for v in inp['shape'][1:])}, got "
                          f"{images.shape[1:]}. Load the data at the model's image size.")
    if inp["shape_signature"][0] == -1 and len(images) > 0:
        it.resize_tensor_input(inp["index"], [len(images), *inp["shape"][1:]])
        it.allocate_tensors()
        it.set_tensor(inp["index"], quantize(images, inp))
        it.invoke()
        return dequantize(it.get_tensor(out["index"]), out)
    batch = int(inp["shape"][0])
    results = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        it.set_tensor(inp["index"], quantize(chunk, inp))
        it.invoke()
        results.append(dequantize(it.get_tensor(out["index"]), out)[: batch - pad])
    return np.concatenate(results)


def latency(model: Model, num_threads: int = 1, runs: int = 50, *, warmup: int = 5, min_warmup_s: float = 0.0,
            image: np.ndarray | None = None) -> dict:
    """Batch-1 (or the static batch) latency of one `invoke()` with XNNPACK on `num_threads` threads: `timed`'s
    median / min / max ms after the warm-up. The input is `image` (float, broadcast to the input shape) or zeros."""
    it = load(model, num_threads)
    inp = it.get_input_details()[0]
    shape = [1 if s == -1 else int(s) for s in inp["shape_signature"]]
    if inp["shape_signature"][0] == -1:
        it.resize_tensor_input(inp["index"], shape)
        it.allocate_tensors()
    x = np.zeros(shape, np.float32) if image is None else np.broadcast_to(image, shape).astype(np.float32)
    it.set_tensor(inp["index"], quantize(x, inp))
    return timed(it.invoke, runs, warmup, min_warmup_s)


def _graph(flatbuffer: bytes):
    """The root `Model` table of a flatbuffer (lazy: nothing is copied), else `ExportError`."""
    try:
        if not schema.Model.ModelBufferHasIdentifier(flatbuffer, 0):
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAs(flatbuffer, 0)
        model.SubgraphsLength()
    except Exception as err:  # flatbuffers raises plain struct/index errors on garbage
        raise ExportError(f"Not a valid TFLite model ({type(err).__name__}: {err}). Re-export it with "
                          "keras-mlp-export.") from err
    return model


def _op_name(code) -> str:
    """The op name of an `OperatorCode`: its builtin name, or its custom code (Flex ops: 'Flex...')."""
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the schema's rule for the two fields
    if builtin == schema.BuiltinOperator.CUSTOM:
        return (code.CustomCode() or b"CUSTOM").decode()
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def ops(flatbuffer: bytes) -> list[tuple[str, list[int]]]:
    """(op name, TensorType of every input and output) of every op in every subgraph, in graph order."""
    model = _graph(flatbuffer)
    names = [_op_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    found = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            tensors = [op.Inputs(i) for i in range(op.InputsLength())] + \
                [op.Outputs(i) for i in range(op.OutputsLength())]
            found.append((names[op.OpcodeIndex()], [graph.Tensors(t).Type() for t in tensors if t >= 0]))
    return found


def op_histogram(flatbuffer: bytes) -> dict[str, int]:
    """Count of each op in the model's graph, most frequent first, e.g. {'FULLY_CONNECTED': 7, 'GELU': 2, ...}."""
    return dict(collections.Counter(name for name, _ in ops(flatbuffer)).most_common())


def non_builtin_ops(flatbuffer: bytes) -> list[str]:
    """The custom, Flex and delegate ops of the model (sorted, unique): empty for a built-ins-only file."""
    builtin = set(_OP_NAMES.values()) - {"CUSTOM", "DELEGATE"}
    return sorted({name for name, _ in ops(flatbuffer) if name not in builtin})


def float_compute_ops(flatbuffer: bytes) -> dict[str, int]:
    """Ops other than (de)quantise with a float32 input or output: empty for a fully integer model."""
    found = collections.Counter(name for name, types in ops(flatbuffer)
                                if name not in IO_OPS and schema.TensorType.FLOAT32 in types)
    return dict(found)
