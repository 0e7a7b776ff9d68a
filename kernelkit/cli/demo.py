"""`kernelkit demo`: the main job on the bundled example.

Builds the kernel library (render, host check, lint), then runs the model doctor on `examples/blocked_model`,
a small model with real MYRIAD blockers, both ways:
  2. `--prefer native` (the default): every blocker becomes native ops, and the real OpenVINO 2021.4 MYRIAD
     plugin compiles the patched model to a blob with no custom layer: deployable without clc;
  3. `--prefer kernel`: the ops with a library kernel bind it instead, verify runs those custom layers on
     the SHAVE emulator, and the real plugin compiles the model with metadata-only check ELFs in place of the
     kernels' SHAVE binaries: it takes every binding (a blob that runs needs clc's `.bin`).
"""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "demo"
ORDER = 0
HELP = "run the main job on the bundled example (kernels build, then inspect -> patch -> verify -> compile)"

DEFAULT_MODEL = "examples/blocked_model/model.onnx"


def add_arguments(parser):
    from kernelkit.facts.target import default_target_name

    parser.add_argument("-o", "--out", default="out/demo", help="output folder (replaced on each run; default %(default)s)")
    parser.add_argument("--target", default=default_target_name(), help="MYRIAD toolkit to patch for (default %(default)s)")
    parser.add_argument("--model", default=None, help=f"model to doctor (default {DEFAULT_MODEL})")


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _compile(outdir: Path, target: str, model: Path, prefer: str, custom_layers: bool = False) -> int:
    """The real plugin's verdict on a patch output folder: 0 as expected (a blob with no custom layer, or with
    `custom_layers` every binding taken with check ELFs), 1 refused or not as expected, 3 no toolchain."""
    from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
    from kernelkit.myriad import toolchain
    from kernelkit.myriad.compile import CompileFailed
    from kernelkit.doctor.confirm import record_compiled
    from kernelkit.doctor.workflow import NeedsClc, compile_patched
    from kernelkit.facts.target import compiler_target, get_target
    from kernelkit.model import patchdir

    if not get_target(target).compiler:
        print(f"(the real compiler kernelkit runs is {compiler_target().name}'s; nothing to compile for {target})")
        return 0
    if not toolchain.locate().ready():
        print("provisioning the legacy MYRIAD toolchain (kernelkit toolchain setup)...", flush=True)
        try:
            toolchain.setup(log=print)
        except KernelkitError as exc:
            print(f"the real compiler is unavailable: {exc}")
            return 3
    try:
        result = compile_patched(outdir, target)
    except CompileFailed as exc:
        print(f"the real MYRIAD {target} plugin refused the patched model: {exc}")
        return 1
    except ToolchainUnavailable as exc:
        print(f"the real compiler is unavailable: {exc}")
        return 3
    # the folder's report holds the plugin's verdict, as patch's does
    record_compiled(outdir, result, model=model, target=target, patch_options={"prefer": prefer})
    if isinstance(result, NeedsClc):
        layers = ", ".join(v.case.label() for v in result.verdicts)
        print(f"the real MYRIAD {target} plugin compiled the model with check ELFs for {', '.join(result.missing)} "
              f"and took the binding of every custom layer ({layers}): it compiles for MYRIAD once clc's "
              "binaries replace the check ELFs (no blob written)")
        return 0 if custom_layers else 1
    blob = result.blob_path
    if custom_layers:
        print(f"the patched model was expected to bind a library kernel and binds none: {blob}")
        return 1
    print(f"compiled by the real MYRIAD {target} plugin: {blob} ({blob.stat().st_size} bytes), "
          f"{'no' if not (outdir / patchdir.CUSTOM_LAYERS_FILE).exists() else 'with'} custom layer")
    return 0


def run(args) -> int:
    from kernelkit.kernel.builder.build import build_all
    from kernelkit.doctor.workflow import run_doctor
    from kernelkit.core.paths import KERNELS_DIR, REPO_ROOT

    out = Path(args.out)
    model = Path(args.model) if args.model else REPO_ROOT / DEFAULT_MODEL

    _banner(f"1. build the kernel library ({KERNELS_DIR})")
    build_status = build_all(sorted(p for p in KERNELS_DIR.iterdir() if (p / "kernel.toml").is_file()),
                             out / "kernels", force=True)

    _banner(f"2. model doctor on {model} for MYRIAD {args.target}, native formulations (the default)")
    native_status = run_doctor(model, out / "patched", args.target, force=True)
    print()
    compile_status = _compile(out / "patched", args.target, model, "native") if native_status == 0 else native_status

    _banner("3. the same model with --prefer kernel: library kernels, verified on the SHAVE emulator, "
            "judged by the real plugin")
    kernel_status = run_doctor(model, out / "patched-kernel", args.target, force=True, prefer="kernel")
    print()
    check_status = (_compile(out / "patched-kernel", args.target, model, "kernel", custom_layers=True) if kernel_status == 0
                    else kernel_status)

    print()
    print(f"kernels: {'ok' if build_status == 0 else 'FAILED'}   "
          f"native: {'ok, blob written' if native_status == compile_status == 0 else 'FAILED'}   "
          f"kernel: {'ok, verified on the emulator, bindings taken by the plugin' if kernel_status == check_status == 0 else 'FAILED'}")
    print(f"outputs in {out}/")
    sys.stdout.flush()
    return max(build_status, native_status, compile_status, kernel_status, check_status)
