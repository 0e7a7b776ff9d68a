"""How fast and how big a blob is on an OAK (RVC2): a latency and memory estimate from what the blob records.

    est = estimate_blob(model, shaves=None, threads=2)     # model: blob_reader.BlobModel (stage_layers optional)
    est.latency_s, est.fps, est.stages (StageCost rows), est.memory (dict), est.to_dict()

Each stage's time is the sum of four parts (their rates in facts/data/rvc2-estimate.toml, fitted on Luxonis's
published RVC2 table by benchmarks/estimate_calibration.py):
    engine  lane-cycles of its HW ops / engine_rate
    dma     a HW stage's weights and DDR-held input/output / ddr_bandwidth + a Copy's bytes / dma_bandwidth
    shave   a SHAVE stage's input + output bytes / (shave_rate * shaves ** shave_scaling)
    fixed   stage_overhead per stage record (an injected stage is a record too)
and the latency is their sum over the stages, exactly. Throughput: one thread keeps one inference in flight
(fps = 1 / latency); two threads (DepthAI's default, the published setting) keep `two_thread_overlap` in flight.

Memory: DDR the blob needs on the device (the blob itself, whose const section holds the weights, then per
inference thread its BSS and I/O, and the NeuralNetwork node's output pool) against the heap an idle OAK leaves
a pipeline, and each stage's CMX reach against the blob's slices (or `shaves` slices: fewer slices than the
blob was compiled for do not hold it). Both say the device's own message when something does not fit.
"""

from __future__ import annotations

from copy import copy
from dataclasses import asdict, dataclass, field

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.device import MAX_SHAVES
from kernelkit.facts.rvc2 import estimate_params
from kernelkit.myriad.blob_reader import BlobModel, Stage, hw_op_cost

DDR_LOCATIONS = ("BSS", "Input", "Output")      # activations in DDR; "Blob" (weights) is DDR too, counted apart
PARTS = ("engine", "shave", "dma", "fixed")


@dataclass
class StageCost:
    index: int                  # blob stage index (an injected stage: its host's index)
    type: str
    category: str
    shaves: int
    injected: bool
    lane_cycles: int
    ddr_bytes: int              # HW stage: weights + DDR-held activations it reads and writes
    copy_bytes: int             # Copy stage: bytes it moves
    shave_bytes: int            # SHAVE stage: bytes of its inputs and outputs
    cmx_bytes: int              # one past the highest CMX byte it reaches
    engine: float = 0.0         # seconds, per part
    shave: float = 0.0
    dma: float = 0.0
    fixed: float = 0.0
    layers: list = field(default_factory=list)      # [(name, type)] from the graph dump, when there is one

    @property
    def seconds(self) -> float:
        return self.engine + self.shave + self.dma + self.fixed

    def to_dict(self) -> dict:
        out = asdict(self)
        out["layers"] = [{"name": n, "type": t} for n, t in self.layers]
        out["seconds"] = self.seconds
        return out


@dataclass
class Estimate:
    path: str | None
    shaves: int                 # SHAVEs the estimate assumes
    blob_shaves: int            # SHAVEs the blob was compiled for
    threads: int
    stages: list[StageCost]
    memory: dict
    params: dict
    shave_curve: dict = field(default_factory=dict)     # SHAVEs -> latency (s), the blob's engine tiling kept

    @property
    def enough_shaves(self) -> int | None:
        return enough_shaves(self.shave_curve) if self.shave_curve else None

    @property
    def latency_s(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def parts(self) -> dict:
        return {p: sum(getattr(s, p) for s in self.stages) for p in PARTS}

    @property
    def fps(self) -> float:
        inflight = 1.0 if self.threads == 1 else self.params["assumed"]["two_thread_overlap"]
        return inflight / self.latency_s if self.latency_s > 0 else float("inf")

    def top(self, n: int = 10) -> list[StageCost]:
        return sorted(self.stages, key=lambda s: s.seconds, reverse=True)[:n]

    def to_dict(self) -> dict:
        return {"path": self.path, "device": "OAK (RVC2, Myriad X)", "shaves": self.shaves,
                "blob_shaves": self.blob_shaves, "threads": self.threads, "latency_ms": self.latency_s * 1e3,
                "fps": self.fps, "parts_ms": {p: v * 1e3 for p, v in self.parts.items()},
                "stages": [s.to_dict() for s in self.stages], "memory": self.memory,
                "shave_curve_ms": {n: t * 1e3 for n, t in self.shave_curve.items()},
                "enough_shaves": self.enough_shaves,
                "params": {"fitted": {k: (None if v == float("inf") else v)       # inf: a term the fit dropped
                                      for k, v in self.params["fitted"].items()},
                           "assumed": self.params["assumed"]}}


def stage_features(stage: Stage, injected: bool = False) -> StageCost:
    """What the blob records about one stage's work (no rates applied)."""
    lane_cycles = sum(hw_op_cost(stage, op)["lane_cycles"] for op in stage.hw_ops)
    ddr = copy = shave = 0
    if stage.hw_ops:
        seen = set()
        for b in stage.buffers:          # each buffer once, however many ops (descriptors) share it
            key = (b.location, b.offset, b.io_index, b.nbytes)
            if key in seen or b.location == "None":
                continue
            seen.add(key)
            if b.location == "Blob" or b.location in DDR_LOCATIONS:
                ddr += b.nbytes
    elif stage.type_name == "Copy":
        copy = sum(b.nbytes for b in stage.outputs)
    elif stage.category == "SHAVE":
        shave = sum(b.nbytes for b in stage.buffers if b.location != "None" and b.role != "binary")
    cmx = max((b.offset + b.span_bytes for b in stage.buffers if b.location == "CMX"), default=0)
    return StageCost(index=stage.parent if injected else stage.index, type=stage.type_name,
                     category=stage.category, shaves=max(stage.shaves, 1), injected=injected,
                     lane_cycles=lane_cycles, ddr_bytes=ddr, copy_bytes=copy, shave_bytes=shave, cmx_bytes=cmx)


def apply_rates(row: StageCost, params: dict, shaves: int | None = None, blob_shaves: int | None = None) -> StageCost:
    """Fill a stage's four parts (seconds) from its features. `shaves`: run on that many SHAVEs instead of the
    blob's `blob_shaves` (a stage that took them all takes the new count; one that took fewer keeps its own,
    capped by the new count)."""
    f, a = params["fitted"], params["assumed"]
    n = row.shaves
    if shaves is not None:
        n = shaves if blob_shaves is None or row.shaves >= blob_shaves else min(row.shaves, shaves)
    row.engine = row.lane_cycles / f["engine_rate"]
    row.dma = row.ddr_bytes / f["ddr_bandwidth"] + row.copy_bytes / f["dma_bandwidth"]
    row.shave = row.shave_bytes / (f["shave_rate"] * max(n, 1) ** a["shave_scaling"])
    row.fixed = f["stage_overhead"]
    return row


def features(model: BlobModel) -> list[StageCost]:
    rows = []
    for stage in model.stages:
        row = stage_features(stage)
        if model.stage_layers is not None:
            row.layers = [(layer.name, layer.type) for layer in model.stage_layers[stage.index]]
        rows.append(row)
        if stage.injected is not None:
            inner = stage_features(stage.injected, injected=True)
            inner.layers = row.layers
            rows.append(inner)
    return rows


def memory_check(model: BlobModel, rows: list[StageCost], params: dict, *, shaves: int, threads: int) -> dict:
    """DDR and CMX the blob needs on the device against what it has, with the device's message when short."""
    m = params["memory"]
    h = model.header
    weights = h.file_size - h.constants_offset
    per_thread = h.bss_size + h.inputs_size + h.outputs_size
    pool = m["output_pool_frames"] * h.outputs_size
    # The blob is held whole (its const section is the weights); every thread has its own BSS and I/O.
    need = h.file_size + threads * per_thread + pool
    heap = m["ddr_heap_bytes"]
    ddr = {"blob_bytes": h.file_size, "weights_bytes": weights, "blob_other_bytes": h.file_size - weights,
           "bss_bytes": h.bss_size, "inputs_bytes": h.inputs_size, "outputs_bytes": h.outputs_size,
           "threads": threads, "per_thread_bytes": per_thread, "output_pool_frames": m["output_pool_frames"],
           "output_pool_bytes": pool, "need_bytes": need, "heap_bytes": heap, "fits": need <= heap,
           "share_of_heap": need / heap}
    if need > heap:
        ddr["device_message"] = m["ddr_message"].format(need=need, have=heap)
        ddr["what_to_change"] = (f"the blob needs {need / 2**20:.1f} MiB of the {heap / 2**20:.1f} MiB heap: use "
                                 "one inference thread (setNumInferenceThreads(1)), a smaller input, or a smaller "
                                 "model (its weights are " + f"{weights / 2**20:.1f} MiB)")
    slices = min(shaves, MAX_SHAVES) if shaves != model.header.shaves else h.cmx_slices
    have = slices * m["cmx_slice_bytes"]
    peak = max(rows, key=lambda r: r.cmx_bytes, default=None)
    short = [r for r in rows if r.cmx_bytes > have]
    cmx = {"slices": slices, "blob_slices": h.cmx_slices, "slice_bytes": m["cmx_slice_bytes"], "bytes": have,
           "peak_bytes": peak.cmx_bytes if peak else 0, "peak_stage": peak.index if peak else None,
           "stages_over": [r.index for r in short], "fits": not short,
           "per_stage": [r.cmx_bytes for r in rows]}
    if short:
        cmx["device_message"] = m["cmx_message"]
        cmx["what_to_change"] = (f"{len(short)} stage(s) reach past {have} bytes of CMX ({slices} slices): compile "
                                 f"for these {slices} SHAVEs (kernelkit compile --shaves {slices}) so the plugin "
                                 "tiles for the slices it will have")
    return {"ddr": ddr, "cmx": cmx}


def estimate_blob(model: BlobModel, *, shaves: int | None = None, threads: int = 2,
                  params: dict | None = None) -> Estimate:
    if threads not in (1, 2):
        raise KernelkitError(f"threads must be 1 or 2, not {threads}", where="--threads",
                             hint="DepthAI runs a NeuralNetwork node with 1 or 2 inference threads")
    if shaves is not None and not 1 <= shaves <= MAX_SHAVES:
        raise KernelkitError(f"a Myriad X has 1 to {MAX_SHAVES} SHAVEs, not {shaves}", where="--shaves",
                             hint="give the SHAVE count the NeuralNetwork node will run the blob on")
    params = params or estimate_params()
    rows = [apply_rates(r, params, shaves, model.header.shaves) for r in features(model)]
    used = shaves or model.header.shaves
    return Estimate(path=model.path, shaves=used, blob_shaves=model.header.shaves, threads=threads,
                    stages=rows, memory=memory_check(model, rows, params, shaves=used, threads=threads),
                    params=params, shave_curve=shave_curve(model, threads=threads, params=params))


def model_features(model: BlobModel) -> dict:
    """The totals a fit of the rates needs (benchmarks/estimate_calibration.py records them per published row):
    each part's feature summed over the stages, SHAVE bytes already divided by shaves**shave_scaling."""
    params = estimate_params()
    rows = features(model)
    scale = params["assumed"]["shave_scaling"]
    return {"lane_cycles": sum(r.lane_cycles for r in rows), "ddr_bytes": sum(r.ddr_bytes for r in rows),
            "copy_bytes": sum(r.copy_bytes for r in rows),
            "shave_work": sum(r.shave_bytes / r.shaves ** scale for r in rows),
            "stages": len(rows), "shaves": model.header.shaves}


def latency_from_features(feats: dict, params: dict) -> float:
    """The estimate's latency from recorded totals (model_features), with the same rates as estimate_blob."""
    f = params["fitted"]
    return (feats["lane_cycles"] / f["engine_rate"] + feats["ddr_bytes"] / f["ddr_bandwidth"]
            + feats["copy_bytes"] / f["dma_bandwidth"] + feats["shave_work"] / f["shave_rate"]
            + feats["stages"] * f["stage_overhead"])


ENOUGH = 0.05         # a SHAVE count whose latency is within 5 % of 16 SHAVEs' is "enough"


def shave_curve(model: BlobModel, *, threads: int = 2, params: dict | None = None) -> dict[int, float]:
    """Latency (s) of this blob's stages on 1..16 SHAVEs (SHAVE stages only; the engine's tiling as compiled)."""
    params = params or estimate_params()
    rows = features(model)
    return {n: sum(apply_rates(copy(r), params, n, model.header.shaves).seconds for r in rows)
            for n in range(1, MAX_SHAVES + 1)}


def enough_shaves(curve: dict[int, float], within: float = ENOUGH) -> int:
    """The fewest SHAVEs whose estimated latency is within `within` of the most SHAVEs' (past it, more SHAVEs
    buy less than that; DepthAI's advice for 2 threads is half the free SHAVEs each)."""
    best = curve[max(curve)]
    return min(n for n, t in curve.items() if t <= best * (1 + within))
