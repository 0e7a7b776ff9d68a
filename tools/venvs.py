"""The side environments for the tools and tests that need packages the kit must not depend on.

torch, timm, ultralytics: one environment serves the model zoo's exports, the estimate calibration and the YOLO
decoding proof, so torch is installed once: `<cache>/torch-side/venv`. PaddlePaddle 3 and paddle2onnx (the
Paddle .json models): `<cache>/paddle-side/venv`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# torch 2.13.0+cpu and its torchvision: this machine's wheels when present (PyPI's newer torch pulls CUDA packages)
_LOCAL_WHEELS = [(Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"), "torch==2.13.0"),
                 (Path("/opt/pypi-more/files/torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
                  "torchvision==0.28.0")]
TORCH_SIDE_REQUIREMENTS = [str(wheel) if wheel.is_file() else name for wheel, name in _LOCAL_WHEELS] \
    + ["onnx", "timm", "ultralytics", "onnxslim", "onnxruntime"]       # the last two: `yolo export`'s simplify step


def side_python(venv: Path, requirements: list[str], stamp_name: str) -> Path:
    """The python of `venv`, made and filled with `requirements` when the stamp file says they changed."""
    python = venv / "bin" / "python"
    stamp = venv / stamp_name
    if not stamp.is_file() or stamp.read_text() != " ".join(requirements):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        stamp.write_text(" ".join(requirements))
    return python


def torch_python() -> Path:
    """The python of the shared torch side environment, made on first use."""
    from kernelkit.core.paths import cache_dir

    return side_python(cache_dir("torch-side") / "venv", TORCH_SIDE_REQUIREMENTS, ".requirements")


# PaddlePaddle 3 saves PIR programs (.json); paddle2onnx 2 converts them (it imports paddle). About 200 MB of wheels.
PADDLE_SIDE_REQUIREMENTS = ["paddlepaddle==3.3.1", "paddle2onnx==2.1.0", "packaging"]   # paddle2onnx imports packaging, undeclared


def paddle_python() -> Path:
    """The python of the Paddle side environment, made on first use."""
    from kernelkit.core.paths import cache_dir

    return side_python(cache_dir("paddle-side") / "venv", PADDLE_SIDE_REQUIREMENTS, ".requirements")
