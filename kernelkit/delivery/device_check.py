"""Device truth for a compiled model: a small DepthAI v3 script written next to an NN Archive, superblob or blob,
with the inputs it feeds, that a user with an OAK runs to send back the device's output tensors; and the
comparison of those tensors with a reference run on the same inputs (the blob interpreter, OpenVINO CPU).

The script feeds NNData (one tensor per blob input, by name, in the blob's own shape and type) to a NeuralNetwork
node and saves every output tensor to an .npz keyed by output name. It imports nothing from kernelkit, so it runs
wherever depthai 3 and numpy are installed. `--dry-run` does everything but connect a device: the depthai names it
uses are looked up, the model is read by depthai, the NNData is built and read back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import atomic_write

SCRIPT_SUFFIX = ".device_check.py"
INPUTS_SUFFIX = ".inputs.npz"
DEVICE_SUFFIX = ".device.npz"
_KINDS = {".tar.xz": "archive", ".superblob": "superblob", ".blob": "blob"}
# dtypes a blob input can take (DepthAI's names), as the NNData tensor type the script sends
_DATA_TYPES = {"uint8": "U8F", "float16": "FP16", "float32": "FP32", "int32": "INT", "int8": "I8"}


@dataclass
class DeviceCheck:
    script: Path
    inputs: Path
    device_out: Path                       # what the script will write when run
    model: Path
    kind: str                              # archive | superblob | blob
    input_specs: dict = field(default_factory=dict)     # name -> {dtype, shape}
    output_specs: dict = field(default_factory=dict)    # name -> shape


def _kind(path: Path) -> tuple[str, str]:
    for suffix, kind in _KINDS.items():
        if path.name.lower().endswith(suffix):
            return kind, path.name[: -len(suffix)]
    raise KernelkitError("not an NN Archive (.tar.xz), a .superblob or a .blob", path=path,
                         hint="pass what `kernelkit archive` or `kernelkit compile` wrote")


def model_tensors(path: Path, kind: str) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of the executable in `path` as the blob declares them ({name, dtype, shape, layout})."""
    from kernelkit.core import limits
    from kernelkit.core.fsutil import read_input
    from kernelkit.delivery.archive import blob_tensors
    from kernelkit.myriad import superblob as superblobfmt

    if kind == "blob":
        return blob_tensors(path)
    if kind == "superblob":
        data = read_input(path, limits.WEIGHTS_BYTES.value(), what="superblob", limit=limits.WEIGHTS_BYTES)
        return blob_tensors(path, superblobfmt.parse(data, path=path).base)
    import os

    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    try:
        archive = dai.NNArchive(str(path))
        held = archive.getSuperBlob() if str(archive.getModelType()).endswith("SUPERBLOB") else None
        blob = held.getBlobWithNumShaves(8) if held is not None else archive.getBlob()
    except Exception as exc:  # noqa: BLE001 - DepthAI's reader throws several types
        raise KernelkitError(f"DepthAI cannot read this NN Archive: {exc}", path=path,
                             hint="write it again with kernelkit archive") from None
    if blob is None:
        raise KernelkitError("the NN Archive holds no MYRIAD blob or superblob", path=path,
                             hint="archive a blob or superblob (kernelkit archive)")
    return blob_tensors(path, bytes(blob.data))


def _inputs_for(specs: list[dict], given: dict | None, seed: int) -> dict[str, np.ndarray]:
    """The arrays to feed, by blob input name: `given` checked against the blob, else seeded ones (U8: 0..255,
    float: standard normal rounded to fp16, so the same values reach an FP16 input on every side)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for spec in specs:
        name, shape, dtype = spec["name"], spec["shape"], spec["dtype"]
        if dtype not in _DATA_TYPES:
            raise KernelkitError(f"input \"{name}\" takes {dtype}, which DepthAI's NNData cannot carry",
                                 hint="compile the model with U8, FP16 or FP32 inputs")
        if given is None:
            if dtype in ("uint8", "int8", "int32"):
                low, high = (0, 256) if dtype == "uint8" else (-128, 128) if dtype == "int8" else (-1000, 1000)
                arrays[name] = rng.integers(low, high, size=shape).astype(dtype)
            else:
                arrays[name] = rng.standard_normal(shape).astype(np.float16).astype(dtype)
            continue
        if name not in given:
            raise KernelkitError(f"the inputs .npz has no array \"{name}\" (it has: {', '.join(given) or 'none'})",
                                 where="--inputs", hint="key the arrays by the blob's input names")
        array = np.asarray(given[name])
        if list(array.shape) != list(shape):
            raise KernelkitError(f"input \"{name}\" has shape {list(array.shape)}, the blob takes {shape}",
                                 where="--inputs", hint="give the shape the blob takes (kernelkit blob info)")
        if array.dtype != np.dtype(dtype):
            if not (np.issubdtype(array.dtype, np.number) and np.array_equal(array.astype(dtype), array)):
                raise KernelkitError(f"input \"{name}\" is {array.dtype} with values {dtype} cannot hold; the "
                                     f"blob takes {dtype}", where="--inputs",
                                     hint=f"give {dtype} values (U8 inputs: whole numbers 0..255)")
            array = array.astype(dtype)
        arrays[name] = array
    extra = sorted(set(given or {}) - {s["name"] for s in specs})
    if extra:
        raise KernelkitError(f"the inputs .npz has arrays the blob does not take: {', '.join(extra)}",
                             where="--inputs", hint=f"its inputs: {', '.join(s['name'] for s in specs)}")
    return arrays


def write_device_check(source: str | Path, out_dir: str | Path | None = None, *, inputs: dict | None = None,
                       seed: int = 0) -> DeviceCheck:
    """Write `<name>.device_check.py` and `<name>.inputs.npz` next to `source` (or into `out_dir`)."""
    source = Path(source)
    if source.is_dir() or not source.exists():
        raise KernelkitError("no such NN Archive, superblob or blob file" if not source.exists() else
                             "a folder: pass the archive, superblob or blob in it", path=source,
                             hint="kernelkit archive FOLDER -o NAME.tar.xz, then pass NAME.tar.xz")
    kind, name = _kind(source)
    in_specs, out_specs = model_tensors(source, kind)
    arrays = _inputs_for(in_specs, inputs, seed)
    folder = Path(out_dir) if out_dir is not None else source.parent
    script, inputs_path = folder / f"{name}{SCRIPT_SUFFIX}", folder / f"{name}{INPUTS_SUFFIX}"
    spec = {
        "model": source.name if folder.resolve() == source.parent.resolve() else str(source.resolve()),
        "kind": kind,
        "inputs_npz": inputs_path.name,
        "device_npz": f"{name}{DEVICE_SUFFIX}",
        "inputs": {s["name"]: {"dtype": s["dtype"], "data_type": _DATA_TYPES[s["dtype"]], "shape": s["shape"]}
                   for s in in_specs},
        "outputs": {s["name"]: s["shape"] for s in out_specs},
    }
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(inputs_path, buffer.getvalue())
    atomic_write(script, render_script(spec))
    script.chmod(0o755)
    return DeviceCheck(script, inputs_path, folder / spec["device_npz"], source, kind, spec["inputs"],
                       spec["outputs"])


def render_script(spec: dict) -> str:
    # The spec goes in as one JSON string literal (repr), so no name from the blob is ever Python source.
    return _TEMPLATE.replace("@SPEC@", repr(json.dumps(spec, sort_keys=True)))


@dataclass
class DeviceComparison:
    comparisons: list                      # runners.compare.OutputComparison per output, by name
    missing: list[str]                     # reference outputs the device file lacks
    extra: list[str]                       # device outputs the reference lacks

    @property
    def passed(self) -> bool:
        return not self.missing and all(c.passed for c in self.comparisons)


def compare_device(device: str | Path, reference: str | Path, *, atol: float | None = None,
                   rtol: float | None = None) -> DeviceComparison:
    """The device's outputs (.npz from the script) against a reference's (.npz by the same output names: `kernelkit
    blob run --out`, OpenVINO CPU), with kernelkit's one comparator."""
    from kernelkit.core.npzfile import load_npz
    from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL
    from kernelkit.runners.compare import compare

    got = load_npz(device, what="device outputs .npz")
    want = load_npz(reference, what="reference outputs .npz")
    common = [n for n in want if n in got]
    if not common:
        raise KernelkitError(f"the two .npz files share no output name (device: {', '.join(got) or 'none'}; "
                             f"reference: {', '.join(want) or 'none'})", path=device,
                             hint="compare outputs of the same model, keyed by the blob's output names")
    results = [compare(got[n], want[n], name=n, atol=DEFAULT_ATOL if atol is None else atol,
                       rtol=DEFAULT_RTOL if rtol is None else rtol) for n in common]
    return DeviceComparison(results, [n for n in want if n not in got], [n for n in got if n not in want])


_TEMPLATE = '''#!/usr/bin/env python3
"""Device check written by `kernelkit blob device-check`: run the model on an OAK with fixed inputs and save what the
device computes, so it can be compared with the blob interpreter and OpenVINO CPU on the same inputs.

Needs depthai 3 (pip install depthai numpy) and an OAK (RVC2) on USB or PoE.

    python3 THIS_SCRIPT                  # feeds the .npz of inputs beside it, writes the device's outputs
    python3 THIS_SCRIPT --dry-run        # every step but connecting a device
    python3 THIS_SCRIPT --shaves 6       # a superblob's SHAVE count (default 8, what DepthAI takes)

Send back the outputs .npz; it is compared with `kernelkit blob compare DEVICE.npz REFERENCE.npz`.
"""

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import numpy as np

SPEC = json.loads(@SPEC@)
HERE = Path(__file__).resolve().parent
# Every depthai name used below, looked up before anything runs: an API change is named, not a traceback.
API = ["Pipeline", "Pipeline.create", "Pipeline.start", "Pipeline.stop", "Pipeline.getDefaultDevice",
       "NNArchive", "NNArchive.getModelType", "NNArchive.getBlob", "NNArchive.getSuperBlob", "ModelType.SUPERBLOB",
       "OpenVINO.Blob", "OpenVINO.SuperBlob", "OpenVINO.SuperBlob.getBlobWithNumShaves",
       "node.NeuralNetwork", "node.NeuralNetwork.setNNArchive", "node.NeuralNetwork.setBlob",
       "node.NeuralNetwork.input", "node.NeuralNetwork.out", "Node.Input.createInputQueue",
       "Node.Output.createOutputQueue", "InputQueue.send", "MessageQueue.get", "NNData", "NNData.addTensor",
       "NNData.getTensor", "NNData.getAllLayerNames", "TensorInfo.DataType", "__version__"]


def missing_api(dai):
    missing = []
    for dotted in API + ["TensorInfo.DataType." + s["data_type"] for s in SPEC["inputs"].values()]:
        obj = dai
        for part in dotted.split("."):
            if not hasattr(obj, part):
                missing.append(dotted)
                break
            obj = getattr(obj, part)
    return missing


def load_inputs(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name, want in SPEC["inputs"].items():
        if name not in arrays:
            sys.exit(f"{path}: no array {name!r} (the model takes {', '.join(SPEC['inputs'])})")
        array = arrays[name]
        if list(array.shape) != want["shape"] or str(array.dtype) != want["dtype"]:
            sys.exit(f"{path}: {name!r} is {array.dtype} {list(array.shape)}; the model takes "
                     f"{want['dtype']} {want['shape']}")
    return arrays


def make_nndata(dai, arrays):
    data = dai.NNData()
    for name, want in SPEC["inputs"].items():
        data_type = getattr(dai.TensorInfo.DataType, want["data_type"])
        # NNData converts float32 to the FP16 it sends; the inputs are fp16 values already, so nothing rounds.
        array = arrays[name].astype(np.float32) if want["dtype"] == "float16" else arrays[name]
        data.addTensor(name, array, dataType=data_type)
    for name in SPEC["inputs"]:          # read back what will be sent
        sent = np.asarray(data.getTensor(name)).reshape(arrays[name].shape)
        if not np.array_equal(sent.astype(np.float64), arrays[name].astype(np.float64)):
            sys.exit(f"depthai's NNData changed input {name!r} on the host: cannot send it as it is")
    return data


def model_blob(dai, path, shaves):
    """The blob depthai will run (read on the host), to check its inputs before any device is touched."""
    if SPEC["kind"] == "archive":
        archive = dai.NNArchive(str(path))
        if archive.getModelType() == dai.ModelType.SUPERBLOB:
            return archive, archive.getSuperBlob().getBlobWithNumShaves(shaves)
        return archive, archive.getBlob()
    if SPEC["kind"] == "superblob":
        return None, dai.OpenVINO.SuperBlob(str(path)).getBlobWithNumShaves(shaves)
    return None, dai.OpenVINO.Blob(str(path))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the model on an OAK with fixed inputs; save its outputs.")
    parser.add_argument("--inputs", default=str(HERE / SPEC["inputs_npz"]), help="inputs .npz (default: beside me)")
    parser.add_argument("--out", default=str(HERE / SPEC["device_npz"]), help="outputs .npz to write")
    parser.add_argument("--shaves", type=int, default=8, help="SHAVEs of a superblob (1-16, default 8)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outputs")
    parser.add_argument("--dry-run", action="store_true", help="stop before connecting a device")
    args = parser.parse_args(argv)
    if not 1 <= args.shaves <= 16:
        parser.error(f"--shaves {args.shaves}: a superblob holds 1 to 16")
    os.environ.setdefault("DEPTHAI_LEVEL", "warn")
    import depthai as dai

    missing = missing_api(dai)
    if missing:
        sys.exit(f"depthai {getattr(dai, '__version__', '?')} lacks {', '.join(missing)}: install depthai 3 "
                 "(pip install -U depthai)")
    path = Path(SPEC["model"]) if Path(SPEC["model"]).is_absolute() else HERE / SPEC["model"]
    archive, blob = model_blob(dai, path, args.shaves)
    if sorted(blob.networkInputs) != sorted(SPEC["inputs"]):
        sys.exit(f"{path}: inputs {sorted(blob.networkInputs)}, this script feeds {sorted(SPEC['inputs'])}")
    data = make_nndata(dai, load_inputs(args.inputs))
    print(f"depthai {dai.__version__}: {path.name} ({SPEC['kind']}), inputs "
          + ", ".join(f"{n} {s['dtype']} {s['shape']}" for n, s in SPEC["inputs"].items()))
    if args.dry_run:
        print("dry run: the model, the inputs and the NNData are ready; stopping before connecting a device")
        return 0
    try:
        pipeline = dai.Pipeline()        # connects the first OAK found
    except RuntimeError as exc:
        sys.exit(f"no OAK to run on: {exc}")
    with pipeline:
        nn = pipeline.create(dai.node.NeuralNetwork)
        if archive is not None and archive.getModelType() == dai.ModelType.SUPERBLOB:
            nn.setNNArchive(archive, args.shaves)
        elif archive is not None:
            nn.setNNArchive(archive)
        else:
            nn.setBlob(blob)       # a plain blob, or a superblob's blob at --shaves
        in_queue = nn.input.createInputQueue()
        out_queue = nn.out.createOutputQueue()
        pipeline.start()
        in_queue.send(data)
        result = out_queue.get(datetime.timedelta(seconds=args.timeout))
        if result is None:
            sys.exit(f"no outputs from the device within {args.timeout:g} s")
        outputs = {name: np.asarray(result.getTensor(name)) for name in result.getAllLayerNames()}
        pipeline.stop()
    for name, shape in SPEC["outputs"].items():
        if name in outputs and list(outputs[name].shape) != shape and outputs[name].size == int(np.prod(shape)):
            outputs[name] = outputs[name].reshape(shape)
        print(f"  {name}: {list(outputs[name].shape) if name in outputs else 'MISSING'}")
    partial = args.out + ".partial.npz"
    np.savez(partial, **outputs)
    os.replace(partial, args.out)
    print(f"wrote {args.out}: send it back, or compare it: kernelkit blob compare {args.out} REFERENCE.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
