"""`kernelkit demo`: the main job on the bundled example.

Builds the kernel library (render, host check, lint), then runs the model doctor (inspect → patch → verify) on
`examples/blocked_model`, a small model with real MYRIAD blockers.
"""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "demo"
ORDER = 0
HELP = "run the main job on the bundled example (kernels build, then inspect → patch → verify)"

DEFAULT_MODEL = "examples/blocked_model/model.onnx"


def add_arguments(parser):
    parser.add_argument("-o", "--out", default="out/demo", help="output folder (replaced on each run; default %(default)s)")
    parser.add_argument("--target", default="2021.4", help="MYRIAD toolkit to patch for (default %(default)s)")
    parser.add_argument("--model", default=None, help=f"model to doctor (default {DEFAULT_MODEL})")


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def run(args) -> int:
    from ..build import build_all
    from ..patch import run_doctor
    from ..paths import KERNELS_DIR, REPO_ROOT

    out = Path(args.out)
    model = Path(args.model) if args.model else REPO_ROOT / DEFAULT_MODEL

    _banner(f"1. build the kernel library ({KERNELS_DIR})")
    build_status = build_all(sorted(p for p in KERNELS_DIR.iterdir() if (p / "kernel.toml").is_file()),
                             out / "kernels", force=True)

    _banner(f"2. model doctor on {model} for MYRIAD {args.target}")
    doctor_status = run_doctor(model, out / "patched", args.target, force=True)

    print()
    print(f"kernels: {'ok' if build_status == 0 else 'FAILED'}   model: {'ok' if doctor_status == 0 else 'FAILED'}")
    print(f"outputs in {out}/")
    sys.stdout.flush()
    return max(build_status, doctor_status)
