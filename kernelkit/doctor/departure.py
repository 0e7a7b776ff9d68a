"""Where a compiled blob departs from its IR: the blob run stage by stage on the interpreter, and every IR tensor
the plugin's graph dump places in blob memory compared, as soon as it is whole, with the same tensor of the
patched IR on OpenVINO CPU (f32). The first one past verify's blob tolerance (or the first stage with a range
finding) names its stage and IR layer(s). Stages that compute no IR tensor of their own (the plugin's input and
output Converts, DMA copies) are compared through the tensors they feed, never named themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError


@dataclass
class Departure:
    stage: int                      # the blob stage named: the last one computing the tensor (or the finding's)
    type: str                       # its stage type (MyriadXHwOp, Sum, Pad, ...)
    layers: list[tuple[str, str]]   # the IR layers of the stages computing it: (name, plugin's layer type)
    share_of_peak: float            # max |blob - IR| / max |IR| over the tensor (inf: a non-finite mismatch)
    tensor: str | None = None       # the IR tensor compared (origData of the dump): a layer's output
    stages: list[int] = field(default_factory=list)     # every blob stage computing it (tiles, copies)
    finding: str | None = None      # a range finding at this stage: what made it depart
    matched_before: int = 0         # IR tensors compared before this stage's, every one within tolerance
    worst_before: float = 0.0       # the largest share of peak among them: a jump (a different computation) or a
                                    # drift (fp16 noise adding up to the tolerance) shows here

    def to_dict(self) -> dict:
        share = self.share_of_peak if np.isfinite(self.share_of_peak) else str(self.share_of_peak)
        return {"stage": self.stage, "type": self.type, "layers": [name for name, _ in self.layers],
                "layer_types": [kind for _, kind in self.layers], "share_of_peak": share, "tensor": self.tensor,
                "stages": self.stages, "finding": self.finding, "matched_before": self.matched_before,
                "worst_before": self.worst_before}

    def __str__(self) -> str:
        """One sentence: `stage 12 (MyriadXHwOp) = layer 'conv3' (Convolution): 31 % of its peak`."""
        names = " + ".join(f"{name!r} ({kind})" for name, kind in self.layers)
        where = f"stage {self.stage} ({self.type})"
        if len(self.stages) > 1:
            where += f", stages {self.stages[0]}-{self.stages[-1]}"
        text = f"{where} = layer{'s' if len(self.layers) > 1 else ''} {names}"
        if self.finding:
            return f"{text}: {self.finding}"
        share = "non-finite values where the IR has finite ones" if not np.isfinite(self.share_of_peak) else \
            f"{_percent(self.share_of_peak)} of its peak"
        tensor = f"its output {self.tensor!r}" if self.tensor and self.tensor not in [n for n, _ in self.layers] \
            else "its output"
        before = (f" ({self.matched_before} IR tensor{'s' if self.matched_before != 1 else ''} before it matched, "
                  f"the worst at {_percent(self.worst_before)})") if self.matched_before else ""
        return f"{text}: {tensor} is off by {share}{before}"


def _percent(share: float) -> str:
    value = 100 * share
    return f"{value:.0f} %" if value >= 10 else f"{value:.2g} %"


@dataclass
class DepartureSearch:
    """What find_departure found: the departure, or why there is none (`note`)."""

    departure: Departure | None = None
    note: str | None = None
    compared: int = 0               # IR tensors compared
    mapped: int = 0                 # IR tensors the dump places that the patched IR has
    shares: dict[str, float] = field(default_factory=dict)   # each compared tensor's max error / its peak


def reference_tensors(patched, feed, names: list[str]) -> dict[str, np.ndarray]:
    """The named IR tensors (`LAYER` for a layer's only or first output, `LAYER.PORT` as the plugin names the
    others) of the patched model on OpenVINO CPU (f32), made outputs beside its own (kernelkit.ir.cut)."""
    from kernelkit.ir.cut import cut_ir
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    model = patched.copy()
    wanted: dict[str, str] = {}
    for name in dict.fromkeys(names):
        port = _port_of(model, name)
        if port is not None:
            wanted[name] = port
    keep = []
    for result in model.results():
        found = model.producer(result, result.inputs[0].id)
        if found is not None:
            keep.append(f"{found[0].name}:{found[1].id}")
    if not wanted:
        return {}
    ports = list(dict.fromkeys(keep + list(wanted.values())))       # one Result per port (OpenVINO wants it)
    cut_ir(model, ports)
    arrays = dict(zip(ports, OpenVINOCPURunner.of_model(model).run(list(feed)).arrays))
    return {name: arrays[port] for name, port in wanted.items()}


def _port_of(model, name: str) -> str | None:
    """`LAYER:PORT_ID` of the IR tensor the plugin names `name` (legacy data names: a layer's name when it has one
    output, `LAYER.INDEX` for each of several)."""
    layer, index = model.find(name), 0
    if layer is None and "." in name:
        base, _, number = name.rpartition(".")
        if number.isdigit():
            layer, index = model.find(base), int(number)
    if layer is None or layer.type in ("Result", "Const", "Parameter") or index >= len(layer.outputs):
        return None
    return f"{layer.name}:{layer.outputs[index].id}"


def find_departure(blob, patched, feed, *, atol: float, rtol: float) -> DepartureSearch:
    """Run `blob` (a path with its `<stem>.graph.dot` beside it) on the patched model's inputs `feed` (in its
    input order) stage by stage with the fp32 accumulator, and compare each IR tensor the dump places with the
    patched IR's (OpenVINO CPU f32), held to verify's blob tolerance: within atol or BLOB_NOISE_OF_PEAK of the
    tensor's largest magnitude (whichever is larger), or rtol. Stops at the first tensor past it, or the first
    stage with a range finding (overflow before a descale, inf, NaN, a collapse to zero) that has an IR layer."""
    from kernelkit.facts.tolerances import BLOB_NOISE_OF_PEAK
    from kernelkit.myriad import graph_dump
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.runners.blob import interpreter, program as programs
    from kernelkit.runners.blob.runner import order_inputs
    from kernelkit.runners.compare import compare

    blob = Path(blob)
    search = DepartureSearch()
    model = read_blob(blob)
    try:
        dump = graph_dump.matching_dump(blob, model.data)
    except KernelkitError as exc:
        search.note = exc.message
        return search
    if dump is None:
        search.note = (f"no stage map: {graph_dump.dump_path(blob).name} (the plugin's graph dump, written by "
                       "kernelkit compile) is not beside the blob")
        return search
    stage_layers = dump.stage_layers()
    tensors = [t for t in dump.ir_tensors(lambda name: _port_of(patched, name) is not None) if t.layers]
    try:
        refs = reference_tensors(patched, feed, [t.ir_name for t in tensors])
    except KernelkitError as exc:
        search.note = f"the patched IR's inner tensors could not be computed: {exc.message}"
        return search
    tensors = [t for t in tensors if t.ir_name in refs]
    search.mapped = len({t.ir_name for t in tensors})
    ready: dict[int, list] = {}
    for tensor in tensors:
        ready.setdefault(tensor.ready_after, []).append(tensor)
    program = programs.from_model(model, {index: ", ".join(layer.name for layer in found)
                                          for index, found in stage_layers.items() if found})
    batch = max(int(model.header.batch_size), 1)
    done: set[str] = set()
    seen_findings = 0

    def layers_of(found) -> list[tuple[str, str]]:
        return [(layer.name, layer.type) for layer in found]

    feed_by_name = {p.name: array for p, array in zip(patched.parameters(), feed)}
    for stage, interp in interpreter.run_stages(program, order_inputs(program, feed_by_name)):
        new = interp.findings[seen_findings:]
        seen_findings = len(interp.findings)
        if new and stage_layers.get(stage.index):
            first = new[0]
            search.departure = Departure(stage.index, stage.type_name, layers_of(stage_layers[stage.index]),
                                         _share_at(interp, ready.get(stage.index, ()), refs, batch),
                                         finding=_finding_text(first), stages=[stage.index],
                                         matched_before=search.compared,
                                         worst_before=max(search.shares.values(), default=0.0))
            return search
        for tensor in ready.get(stage.index, ()):
            if tensor.ir_name in done:
                continue
            pair = _pair(interp, tensor, refs[tensor.ir_name], batch)
            if pair is None:
                continue
            got, want = pair
            done.add(tensor.ir_name)
            search.compared += 1
            peak = _peak(want)
            c = compare(got, want, atol=max(atol, BLOB_NOISE_OF_PEAK * peak), rtol=rtol, name=tensor.ir_name)
            worst_before = max(search.shares.values(), default=0.0)
            search.shares[tensor.ir_name] = _share(c, peak)
            if c.passed:
                continue
            computed_at = program.stages[tensor.computed_at]
            search.departure = Departure(computed_at.index, computed_at.type_name, layers_of(tensor.layers),
                                         _share(c, peak), tensor.ir_name, list(tensor.stages),
                                         matched_before=search.compared - 1, worst_before=worst_before)
            return search
    if not search.compared:
        search.note = ("no stage could be compared: the graph dump places no tensor of the IR in blob memory at "
                       "the IR's shape (is it the IR the blob was compiled from?)")
    else:
        search.note = (f"no stage departs: the {search.compared} IR tensor(s) the graph dump places in blob memory "
                       "all match the IR's")
    return search


def _pair(interp, tensor, want: np.ndarray, batch: int):
    """The blob's tensor and the IR's, in the IR's shape; None when their shapes differ beyond axes of size 1 (a
    channel-padded or reshaped buffer). A blob of batch B holds one item's tensors."""
    if not set(tensor.order) <= set("NCDHW"):
        return None                     # rank 6 and up: no logical axis order to read it in
    got = interp.read(tensor.buffer())
    want = np.asarray(want)
    if batch > 1 and want.ndim and want.shape[0] % batch == 0 and want.size == batch * got.size:
        want = want[:want.shape[0] // batch]        # item 0's share, as the blob's outputs are stacked
    if [d for d in got.shape if d != 1] != [d for d in want.shape if d != 1]:
        return None                     # another arrangement of as many values: not the same tensor to compare
    got = got.reshape(want.shape)
    if want.dtype.kind in "biu" and got.dtype.kind == "f" and \
            np.array_equal(got, np.round(got)):
        got = got.astype(want.dtype)            # the blob keeps an integer tensor in a float type
    elif want.dtype.kind in "biu" and got.dtype.kind in "iu":
        got = got.astype(want.dtype)
    return got, want


def _peak(want: np.ndarray) -> float:
    """The largest finite magnitude of a reference tensor (0 for an empty or all non-finite one)."""
    finite = want[np.isfinite(want)] if want.dtype.kind == "f" else want
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def _share(c, peak: float) -> float:
    if c.nonfinite_mismatches:
        return float("inf")
    return c.abs_error.max / peak if peak > 0 else c.abs_error.max


def _share_at(interp, tensors, refs, batch: int) -> float:
    """The share of peak of a stage's tensor when the stage also has a range finding (0.0: none to compare)."""
    from kernelkit.runners.compare import compare

    for tensor in tensors:
        pair = _pair(interp, tensor, refs[tensor.ir_name], batch)
        if pair is not None:
            got, want = pair
            return _share(compare(got, want, name=tensor.ir_name), _peak(want))
    return 0.0


def _finding_text(finding) -> str:
    """A range finding said short: what the stage holds, without the stage (the departure names it)."""
    value = f"{finding.value:.6g}"
    return {"overflow before descale": f"it holds {value} before its descale (fp16 max 65504)" +
            (f" ({finding.detail})" if finding.detail else ""),
            "inf": "its output becomes inf",
            "nan": "its output becomes NaN",
            "zero collapse": f"its output collapses to all zeros in fp16 (exact values up to {value})"
            }.get(finding.kind, finding.kind)


def departure_from_model(blob, reference, inputs: dict) -> DepartureSearch:
    """find_departure against a model file (`kernelkit blob run --reference`): `inputs` keyed by the blob's input
    names, which the model's inputs must carry; verify's default tolerances."""
    from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL
    from kernelkit.ir.load import load_model

    model = load_model(Path(reference))
    names = [p.name for p in model.parameters()]
    missing = [name for name in names if name not in inputs]
    if missing:
        raise KernelkitError(f"the reference's input {missing[0]!r} is no input of the blob "
                             f"({', '.join(inputs)})", path=reference, where="--reference",
                             hint="pass the IR the blob was compiled from (a patch folder's model.xml)")
    return find_departure(blob, model, [inputs[name] for name in names], atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL)
