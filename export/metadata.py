"""TFLite model metadata (normalisation + labels) for MediaPipe Tasks' ImageClassifier, and the JSON sidecar.

Route (no tflite-support / mediapipe in our environment: their writers pin numpy<2 / protobuf<5, or fail to
import): the `ModelMetadata` flatbuffer is encoded here with the `flatbuffers` package, table by table after
the published schema `tensorflow_lite_support/metadata/metadata_schema.fbs` (v1.5.0, file identifier "M001"),
stored as the model buffer named "TFLITE_METADATA" through the TFLite schema's object API that
`ai_edge_litert` ships (`schema_py_generated`), and the labels file is appended as a zip archive, exactly the
layout `tflite_support.metadata.MetadataPopulator` writes. MediaPipe then reads it (tested in a separate venv,
`tests/test_export_mediapipe.py`).

MediaPipe applies `(pixel - mean) / std` to 0..255 pixels, so our `(x / 255 - m) / s` becomes mean = 255·m,
std = 255·s. Its ImageClassifier takes float32 or uint8 input: the int8-input files carry the same metadata
but MediaPipe cannot run them (use the `int8_uint8` or `int8_float_io` file there). A raw-pixel file
(`export.pixels`) takes the pixels as they are: its NormalizationOptions say mean 0, std 1, as
`tflite_support`'s writer does for a uint8 input (MediaPipe ignores them for uint8: it feeds 0..255 as is).
"""
from __future__ import annotations

import io
import zipfile

import flatbuffers
import flatbuffers.table
from ai_edge_litert import schema_py_generated as schema

from export import litert
from export.errors import ExportError

METADATA_NAME = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"
_TENSOR_AXIS_LABELS = 2
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES, _NORMALIZATION_OPTIONS = 2, 1, 1
COLOR_SPACES = {"UNKNOWN": 0, "RGB": 1, "GRAYSCALE": 2}  # the schema's ColorSpaceType: nothing else


def color_space(channels: int) -> str:
    """The metadata colour space of a `channels`-channel image: RGB (3), GRAYSCALE (1), else UNKNOWN."""
    return {3: "RGB", 1: "GRAYSCALE"}.get(int(channels), "UNKNOWN")


def _table(builder: flatbuffers.Builder, fields: list) -> int:
    """Build one table: `fields` is a list of (slot, kind, value) with kind in 'offset', 'uint8', 'uint32'."""
    builder.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "uint32":
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder: flatbuffers.Builder, values) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(list(values)):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def metadata_buffer(name: str, mean, std, image_size: tuple[int, int], labels_file: str,
                    description: str = "", color: str = "RGB", raw_pixels: bool = False) -> bytes:
    """The `ModelMetadata` flatbuffer of an image classifier (schema slots noted inline); `raw_pixels`: the input
    takes 0..255 pixels as they are (NormalizationOptions mean 0, std 1; `mean`/`std` are inside the model)."""
    b = flatbuffers.Builder(1024)
    s = b.CreateString
    # AssociatedFile{name:0, description:1, type:2}
    labels = _table(b, [(0, "offset", s(labels_file)), (1, "offset", s("Class labels, one per line.")),
                        (2, "uint8", _TENSOR_AXIS_LABELS)])
    # NormalizationOptions{mean:0, std:1}; ProcessUnit{options_type:0, options:1}
    norm = _table(b, [(0, "offset", _floats(b, [0.0 if raw_pixels else 255.0 * m for m in mean])),
                      (1, "offset", _floats(b, [1.0 if raw_pixels else 255.0 * v for v in std]))])
    unit = _table(b, [(0, "uint8", _NORMALIZATION_OPTIONS), (1, "offset", norm)])
    # ImageSize{width:0, height:1}; ImageProperties{color_space:0, default_size:1};
    # Content{content_properties_type:0, content_properties:1}
    size = _table(b, [(0, "uint32", image_size[1]), (1, "uint32", image_size[0])])
    image_props = _table(b, [(0, "uint8", COLOR_SPACES[color]), (1, "offset", size)])
    image_content = _table(b, [(0, "uint8", _IMAGE_PROPERTIES), (1, "offset", image_props)])
    feature_content = _table(b, [(0, "uint8", _FEATURE_PROPERTIES), (1, "offset", _table(b, []))])
    # TensorMetadata{name:0, description:1, content:3, process_units:4, associated_files:6}
    image = _table(b, [(0, "offset", s("images")),
                       (1, "offset", s(f"{color} image, raw 0..255 pixels (normalised inside the model)." if raw_pixels
                                       else f"{color} image, normalised by NormalizationOptions.")),
                       (3, "offset", image_content), (4, "offset", _vector(b, [unit]))])
    logits = _table(b, [(0, "offset", s("logits")), (1, "offset", s("Class logits (unnormalised scores).")),
                        (3, "offset", feature_content), (6, "offset", _vector(b, [labels]))])
    # SubGraphMetadata{name:0, input_tensor_metadata:2, output_tensor_metadata:3}
    subgraph = _table(b, [(0, "offset", s("image_classifier")), (2, "offset", _vector(b, [image])),
                          (3, "offset", _vector(b, [logits]))])
    # ModelMetadata{name:0, description:1, version:2, subgraph_metadata:3, author:4, license:5,
    #               min_parser_version:7}
    root = _table(b, [(0, "offset", s(name)), (1, "offset", s(description or f"{name}: image classifier.")),
                      (2, "offset", s("1")), (3, "offset", _vector(b, [subgraph])),
                      (4, "offset", s("keras-mlp")), (5, "offset", s("Apache-2.0")),
                      (7, "offset", s(MIN_PARSER_VERSION))])
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def add_metadata(flatbuffer: bytes, *, name: str, mean, std, labels: list[str], labels_file: str,
                 raw_pixels: bool = False) -> tuple[bytes, str]:
    """`flatbuffer` with the metadata buffer and the zipped labels file; returns (bytes, note).

    The colour space follows the input's channels (`color_space`); `mean`/`std` hold one value per channel;
    `raw_pixels`: a raw-pixel file (`export.pixels`), whose normalisation is inside the model.
    """
    details = litert.load(flatbuffer).get_input_details()[0]
    channels = int(details["shape"][3])
    if len(mean) != channels or len(std) != channels:
        raise ExportError(f"mean/std need one value per input channel ({channels}), got {len(mean)}/{len(std)}.")
    color = color_space(channels)
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = list(metadata_buffer(name, mean, std, tuple(details["shape"][1:3]), labels_file, color=color,
                                       raw_pixels=raw_pixels))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(labels_file, "\n".join(labels) + "\n")
    notes = []
    if details["dtype"].__name__ not in ("float32", "uint8"):
        notes.append(f"input is {details['dtype'].__name__}: MediaPipe ImageClassifier takes float32 or uint8 input "
                     "only; use the int8_uint8 (raw pixels) or int8_float_io file there.")
    if color == "UNKNOWN":
        notes.append(f"{channels}-channel input: the metadata schema's colour spaces are RGB (3) and GRAYSCALE (1) "
                     "only, so it says UNKNOWN and MediaPipe's ImageClassifier will not take the file.")
    return out.getvalue(), " ".join(notes)


def read_metadata(flatbuffer: bytes) -> tuple[bytes | None, dict[str, bytes]]:
    """(ModelMetadata bytes or None, {associated file name: content}) of a .tflite: the round trip check."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    data = None
    for entry in model.metadata or []:
        if entry.name.decode() == METADATA_NAME:
            data = bytes(bytearray(model.buffers[entry.buffer].data))
    files = {}
    try:
        with zipfile.ZipFile(io.BytesIO(flatbuffer)) as archive:
            files = {n: archive.read(n) for n in archive.namelist()}
    except zipfile.BadZipFile:
        pass
    return data, files


def _child(tab: flatbuffers.table.Table, slot: int) -> flatbuffers.table.Table | None:
    """Table (or union value) at `slot` of `tab`, None if absent."""
    offset = tab.Offset(4 + 2 * slot)
    return flatbuffers.table.Table(tab.Bytes, tab.Indirect(tab.Pos + offset)) if offset else None


def _children(tab: flatbuffers.table.Table, slot: int) -> list:
    offset = tab.Offset(4 + 2 * slot)
    if not offset:
        return []
    start = tab.Vector(offset)
    return [flatbuffers.table.Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(tab.VectorLen(offset))]


def _float_list(tab: flatbuffers.table.Table, slot: int) -> list[float]:
    offset = tab.Offset(4 + 2 * slot)
    start = tab.Vector(offset) if offset else 0
    return [tab.Get(flatbuffers.number_types.Float32Flags, start + 4 * i) for i in range(tab.VectorLen(offset))] \
        if offset else []


def read_image_metadata(flatbuffer: bytes) -> dict | None:
    """What MediaPipe reads of the input image's metadata: {"color": "RGB", "mean": [...], "std": [...]} (the
    NormalizationOptions, empty lists when absent), None without metadata (schema slots as `metadata_buffer`)."""
    data, _ = read_metadata(flatbuffer)
    if data is None:
        return None
    root = flatbuffers.table.Table(bytearray(data), flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
    image = _children(_children(root, 3)[0], 2)[0]
    props = _child(_child(image, 3), 1)
    color = props.Get(flatbuffers.number_types.Uint8Flags, props.Pos + props.Offset(4)) if props.Offset(4) else 0
    norm = next((_child(unit, 1) for unit in _children(image, 4)
                 if unit.Get(flatbuffers.number_types.Uint8Flags, unit.Pos + unit.Offset(4)) == _NORMALIZATION_OPTIONS),
                None)
    return {"color": {v: k for k, v in COLOR_SPACES.items()}[color],
            "mean": _float_list(norm, 0) if norm else [], "std": _float_list(norm, 1) if norm else []}


def _quantization(detail: dict) -> dict | None:
    """{"scale", "zero_point"} of a quantised tensor; None for a float one (TFLite reports scale 0 there)."""
    scale, zero = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero)} if scale else None


def normalization_entry(mean, std, raw_pixels: bool) -> dict:
    """The sidecar's `input.normalization`: what an app applies to 0..255 pixels (nothing for a raw-pixel file,
    whose own normalisation is recorded under `in_model`)."""
    if not raw_pixels:
        return {"formula": "(pixel / 255 - mean) / std", "mean": mean, "std": std}
    return {"formula": "pixel (raw 0..255, uint8: apply nothing)", "mean": [0.0] * len(mean),
            "std": [1.0] * len(std), "in_model": {"formula": "(pixel / 255 - mean) / std", "mean": mean, "std": std}}


def sidecar(model, mode: str, flatbuffer: bytes, labels: list[str], labels_file: str, preprocessing, spec,
            raw_pixels: bool = False) -> dict:
    """What an app needs beside the .tflite: input name/shape/dtype/quantisation, normalisation (the model's whole
    `keras_mlp.Preprocessing` under "preprocessing"; None for a model that records none), labels; `raw_pixels`: a
    raw-pixel file (`export.pixels`), fed 0..255 pixels as they are."""
    it = litert.load(flatbuffer)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    return {"model": model.name, "mode": mode, "input": {
        "name": "images", "shape": [int(v) for v in inp["shape_signature"]], "dtype": inp["dtype"].__name__,
        "quantization": _quantization(inp),
        "layout": "NHWC", "color": color_space(spec.shape[3]), "channels": int(spec.shape[3]),
        "image_size": [int(spec.shape[1]), int(spec.shape[2])], "raw_pixels": raw_pixels,
        "normalization": None if preprocessing is None else normalization_entry(
            list(preprocessing.mean), list(preprocessing.std), raw_pixels),
        "preprocessing": None if preprocessing is None else preprocessing.get_config()},
        "output": {"name": "logits", "dtype": out["dtype"].__name__, "num_classes": len(labels),
                   "quantization": _quantization(out)},
        "labels": labels, "labels_file": labels_file}
