#!/usr/bin/env python3
"""Every blob the kit can compile cheaply, through the blob reader: does every stage parse with no word left over,
and which stage types occur?

    .venv/bin/python tools/blob_survey.py [--onnx OPS|all|none] [--kernels NAMES|all|none] [--no-models]
        [--blobs DIR ...] [--keep DIR] [--json OUT.json]

Sources (each compiled with the real MYRIAD 2021.4 plugin, `kernelkit toolchain setup`):
    models   the small OpenVINO-built models of tests/myriad_models.reader_models() (about a second each),
             also compiled with the neural compute engine off (MYRIAD_ENABLE_HW_ACCELERATION NO)
    onnx     ONNX's single-node test cases of the given op types (comma-separated; `all`: every case, an hour
             or more), each patched for 2021.4 and compiled the way tools/onnx_acceptance.py deploys them; a case
             that does not patch or compile is counted, not read
    kernels  plugin-check's check blobs of the library kernels (kernels/<name>; check ELFs stand in for clc)
    blobs    every *.blob under the given folders (e.g. a model-zoo run's compiled blobs)
Prints one line per blob that does not read (and why), then the stage types seen with their counts, and the
2021.4 stage types no blob held. Exit 1 when any blob the plugin wrote does not read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

DEFAULT_ONNX = ("Relu,Sigmoid,Tanh,Softmax,Conv,ConvTranspose,MaxPool,AveragePool,Gemm,MatMul,Add,Mul,Div,Sub,"
                "Transpose,Concat,Gather,Pad,Resize,Clip,LeakyRelu,Elu,Exp,Log,Floor,Ceil,ReduceMean,ReduceMax,"
                "ReduceSum,Slice,Split,Tile,TopK,InstanceNormalization,LRN,PRelu,HardSigmoid,Softplus,Where,"
                "Greater,Less,Equal,Not,And,Pow,Sqrt,Reciprocal,Neg,Erf,Expand,Flatten,Reshape,Squeeze,"
                "Unsqueeze,BatchNormalization,GlobalAveragePool,DepthToSpace,CumSum,Mish,HardSwish")


class Survey:
    def __init__(self):
        self.read: list[tuple[str, str, object]] = []       # (source, name, BlobModel)
        self.failed: list[tuple[str, str, str]] = []        # the reader refused a plugin-written blob
        self.skipped: Counter = Counter()                   # (source, why) -> n: no blob to read

    def add(self, source: str, name: str, blob: Path) -> None:
        from kernelkit.core.errors import KernelkitError
        from kernelkit.myriad.blob_reader import read_blob

        try:
            self.read.append((source, name, read_blob(blob)))
        except KernelkitError as exc:
            self.failed.append((source, name, str(exc).splitlines()[0]))
            print(f"  UNREADABLE {source} {name}: {str(exc).splitlines()[0]}", flush=True)

    def stage_types(self) -> Counter:
        return Counter(s.type_name for _, _, m in self.read for s in m.all_stages())


def survey_models(survey: Survey, work: Path) -> None:
    from myriad_models import reader_models

    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.compile import compile_model

    for name, build in reader_models().items():
        xml = build(work)
        # as compiled by default, and with the neural compute engine off (the SHAVE conv, pool, FC stages)
        for suffix, config in (("", {}), (".sw", {"MYRIAD_ENABLE_HW_ACCELERATION": "NO"})):
            try:
                compile_model(xml, work / f"{name}{suffix}.blob", config=config)
            except KernelkitError as exc:
                survey.skipped[("models", f"no compile: {exc.message[:80]}")] += 1
                continue
            survey.add("models", name + suffix, work / f"{name}{suffix}.blob")


def survey_onnx(survey: Survey, work: Path, ops: set[str] | None) -> None:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.harness.onnx_cases import node_cases, prepare
    from kernelkit.model.patcher import patch_model

    for number, (op, case) in enumerate(node_cases(ops)):
        folder = work / f"onnx-{number}"
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                prepared = prepare(case, folder)
                if isinstance(prepared, str):
                    survey.skipped[("onnx", "not plain tensors")] += 1
                    continue
                result = patch_model(prepared.model_path, folder / "patched", "2021.4", input_shapes=prepared.shapes)
                if getattr(result, "exit_code", 0):
                    survey.skipped[("onnx", "patch left blockers")] += 1
                    continue
                compile_folder(folder / "patched", folder / "model.blob")
        except KernelkitError as exc:
            survey.skipped[("onnx", type(exc).__name__)] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - a converter crash on a test case is not the reader's concern
            survey.skipped[("onnx", f"{type(exc).__name__} before a blob")] += 1
            continue
        survey.add("onnx", case.name, folder / "model.blob")


def survey_kernels(survey: Survey, work: Path, names: list[str]) -> None:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.doctor.plugin_check.kernel_folder import check_kernel_dir

    for name in names:
        keep = work / f"kernel-{name}"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                check_kernel_dir(KERNELS_DIR / name, jobs=1, keep=keep)
        except KernelkitError as exc:
            survey.skipped[("kernels", type(exc).__name__)] += 1
            continue
        blobs = sorted(keep.rglob("*.check.blob"))
        if not blobs:
            survey.skipped[("kernels", "no check blob")] += 1
        for i, blob in enumerate(blobs):
            survey.add("kernels", f"{name}#{i}", blob)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", default=DEFAULT_ONNX, help="ONNX op types (comma-separated), `all` or `none`")
    parser.add_argument("--kernels", default="all", help="library kernel names (comma-separated), `all` or `none`")
    parser.add_argument("--no-models", action="store_true", help="skip tests/myriad_models.reader_models()")
    parser.add_argument("--blobs", type=Path, nargs="*", default=[], help="folders of .blob files to read too")
    parser.add_argument("--keep", type=Path, default=None, help="compile into this folder (kept) instead of a temp")
    parser.add_argument("--json", type=Path, default=None, help="write the counts here")
    args = parser.parse_args(argv)

    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.facts.myriad_stages import stage_types
    from kernelkit.myriad import toolchain

    toolchain.require()
    survey = Survey()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="blob-survey-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.no_models:
            survey_models(survey, work)
            print(f"models: {len(survey.read)} blobs read ({time.time() - t0:.0f} s)", flush=True)
        if args.onnx != "none":
            before = len(survey.read)
            survey_onnx(survey, work, None if args.onnx == "all" else set(args.onnx.split(",")))
            print(f"onnx: {len(survey.read) - before} blobs read ({time.time() - t0:.0f} s)", flush=True)
        if args.kernels != "none":
            names = sorted(p.parent.name for p in KERNELS_DIR.glob("*/kernel.toml")) if args.kernels == "all" \
                else args.kernels.split(",")
            before = len(survey.read)
            survey_kernels(survey, work, names)
            print(f"kernels: {len(survey.read) - before} check blobs read ({time.time() - t0:.0f} s)", flush=True)
        for folder in args.blobs:
            for blob in sorted(folder.rglob("*.blob")):
                survey.add("blobs", str(blob), blob)
    seen = survey.stage_types()
    stages = sum(seen.values())
    print(f"\n{len(survey.read)} blobs read, {stages} stages, {len(survey.failed)} unreadable, "
          f"{sum(survey.skipped.values())} sources without a blob ({time.time() - t0:.0f} s)")
    for (source, why), n in sorted(survey.skipped.items()):
        print(f"  no blob: {source}: {why} x{n}")
    print("stage types seen: " + ", ".join(f"{name} {n}" for name, n in seen.most_common()))
    never = sorted(t.name for t in stage_types().values() if t.name not in seen)
    print(f"2021.4 stage types no blob held ({len(never)}): {', '.join(never)}")
    if args.json:
        args.json.write_text(json.dumps({"blobs": len(survey.read), "stages": stages, "seen": dict(seen),
                                         "unreadable": survey.failed,
                                         "skipped": {f"{s}: {w}": n for (s, w), n in survey.skipped.items()}},
                                        indent=1) + "\n")
    return 1 if survey.failed else 0


if __name__ == "__main__":
    sys.exit(main())
