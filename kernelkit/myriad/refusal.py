"""Which layer of the compiled model a MYRIAD refusal is about, when the plugin's words do not say.

The plugin names the layer it refuses most of the time, but often by a name of its own: its nGraph passes
make nodes (`FullyConnected_44171` from a MatMul, `Reshape_44173`, `Concat_23265`) the model never had, and
some refusals name nothing ("UNSPECIFIED isn't supported"). Measured on the real 2021.4 plugin: its front end
refuses before any internal graph exists, so neither the final dump nor the per-pass dumps
(`MYRIAD_DUMP_INTERNAL_GRAPH_DIRECTORY` + `MYRIAD_DUMP_ALL_PASSES`) are written for these; they are written
for refusals in its later passes, where the failing stage's origLayer names the layer. What always works
offline is asking the plugin again (a refusal in the later passes, e.g. Greater on S32's stage type check,
leaves the dumps up to the failing pass: four for a one-layer model): compile the model cut after its first
k layers (in topological order) and find by bisection the first layer whose prefix the plugin refuses the same way. A compile of a small
model takes well under a second here, so this is a handful of compiles, done only after a refusal.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MAX_BISECTION_COMPILES = 16
# The prefixes that compile run the plugin's whole pipeline, minutes for a large model (its HW tiling search):
# past this much time bisection gives up and the refusal keeps the plugin's words only.
BISECTION_SECONDS = 120.0
_SKIPPED = ("Parameter", "Const", "Result")


@dataclass(frozen=True)
class Located:
    name: str                   # a layer (IR) or node (ONNX) of the compiled model
    type: str | None
    how: str                    # "named" | "per-pass dump" | "bisection"


def model_layer_types(model: Path) -> dict[str, str]:
    """name -> type of the model's layers (IR) or nodes (ONNX, by node name and by output name: the 2021.4
    ONNX reader names a layer after its output when the node has none)."""
    from kernelkit.core import xmlsafe

    try:
        if model.suffix.lower() == ".onnx":
            import onnx

            graph = onnx.load(str(model), load_external_data=False).graph
            found = {out: node.op_type for node in graph.node for out in node.output if out}
            found.update({node.name: node.op_type for node in graph.node if node.name})
            return found
        root = xmlsafe.parse_file(model, max_bytes=256 * xmlsafe.MiB)
        return {layer.get("name"): layer.get("type") for layer in root.iter("layer")}
    except Exception:  # only an aid for the message
        return {}


def signature(message: str, name: str | None = None) -> str:
    """A refusal's words without the names and numbers that change when the model is cut. A crash carries
    them after "what():": with the graph dump on, the plugin dies of the exception it reports without it
    ("Unsupported precision I32" as "terminate called after throwing ... what(): Unsupported precision I32")."""
    thrown = re.search(r"what\(\):\s*(\S.*)", message)
    first = thrown.group(1) if thrown else message.strip().splitlines()[0] if message.strip() else ""
    if name:
        first = first.replace(name, "")
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "''", first)
    first = re.sub(r"\{[^}]*\}", "{}", first)
    return re.sub(r"\d+", "#", first)


def locate(model: Path, message: str, name: str | None, *, attempt: Callable[[Path, dict, float], str | None]) \
        -> Located | None:
    """The model's layer a refusal is about: the one it names, else the per-pass dumps', else bisection
    (IR models only, within BISECTION_SECONDS). None when none of these finds it. `attempt(model_xml,
    extra_config, seconds)` compiles a model with the refused compile's settings plus `extra_config`, for at
    most `seconds`, and gives the plugin's words (None: compiled; TimeoutError past `seconds`)."""
    model = Path(model)
    known = model_layer_types(model)
    if name and name in known:
        return Located(name, known[name], "named")
    if model.suffix.lower() != ".xml":
        return None
    if name:
        found = layer_from_pass_dumps(model, name, attempt)
        if found is not None:       # the dump's type is the plugin's legacy one (Eltwise): the model's first
            return Located(found.name, known.get(found.name, found.type), "per-pass dump")
    return _bisect(model, message, name, attempt)


def layer_from_pass_dumps(model: Path, name: str, attempt):
    """The layer behind the stage or data `name` in the per-pass dumps of the refused compile, the last pass
    first (None: no dump names it, as for every refusal of the plugin's front end)."""
    from kernelkit.myriad.graph_dump import read_dump

    with tempfile.TemporaryDirectory(prefix="kernelkit-passes-") as tmp:
        folder = Path(tmp) / "passes"
        folder.mkdir()
        try:
            attempt(model, {"MYRIAD_DUMP_INTERNAL_GRAPH_DIRECTORY": str(folder), "MYRIAD_DUMP_ALL_PASSES": "YES"},
                    BISECTION_SECONDS)
        except TimeoutError:
            return None
        dumps = sorted(folder.glob("*.dot"), reverse=True)       # named by pass number: the last pass first
        for path in dumps:
            try:
                found = read_dump(path).layer_of(name)
            except Exception:  # a dump cut short by the refusal: try the one before
                continue
            if found is not None:
                return found
    return None


def _bisect(model: Path, message: str, name: str | None, attempt) -> Located | None:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.core.fsutil import read_input
    from kernelkit.ir.model import IRModel

    try:
        xml = read_input(model, 256 << 20, what="IR")
        weights = model.with_suffix(".bin")
        bin_data = read_input(weights, 8 << 30, what="IR weights") if weights.is_file() else None
        base = IRModel.from_bytes(xml, bin_data, path=model, bin_path=weights)
        order = [layer.name for layer in base.topological_order() if layer.type not in _SKIPPED]
    except KernelkitError:
        return None
    if not order:
        return None
    wanted = signature(message, name)
    compiles = 0
    deadline = time.monotonic() + BISECTION_SECONDS

    def refused_the_same_way(k: int) -> bool:
        nonlocal compiles
        compiles += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        words = _compile_prefix(base, order[:k + 1], attempt, left)
        return words is not None and signature(words, name) == wanted

    lo, hi = 0, len(order) - 1          # the whole model is refused: the answer is <= hi
    try:
        while lo < hi and compiles < MAX_BISECTION_COMPILES:
            mid = (lo + hi) // 2
            if refused_the_same_way(mid):
                hi = mid
            else:
                lo = mid + 1
        if lo != hi or not refused_the_same_way(lo):
            return None
    except TimeoutError:
        return None
    layer = base.find(order[lo])
    return Located(layer.name, layer.type, "bisection")


def _compile_prefix(base, names: list[str], attempt, seconds: float) -> str | None:
    """Compile the model cut after the layers `names`: the plugin's words, or None if it compiled (or the
    cut could not be made)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.ir.cut import cut_ir

    model = base.copy()
    inside = set(names)
    outputs = []
    for layer_name in names:
        layer = model.find(layer_name)
        for port in layer.outputs:
            consumers = model.consumers(layer, port.id)
            if not consumers or any(c.name not in inside or c.type == "Result" for c, _ in consumers):
                outputs.append(f"{layer.name}:{port.id}")
    try:
        cut_ir(model, outputs)
    except KernelkitError:
        return None
    with tempfile.TemporaryDirectory(prefix="kernelkit-bisect-") as tmp:
        xml, _ = model.save(Path(tmp) / "model.xml")
        return attempt(xml, {}, seconds)
