"""The device estimate used by `patch` (docs/estimate.md, "In patch"): the patched blob's estimate against the
straight compile's, and for each layer with both a native formulation and a library kernel, what each form costs
on an OAK, read from real compiled blobs with kernelkit.myriad.estimate's per-stage model.

    summary(est)                                  report["estimate"] (its "straight" and "vs_straight" added)
    straight_record(model_path, config, ...)     the straight compile's estimate, or why there is none
    layer_costs(est, changes, layers)             per user layer, the estimated time of the stages made from it
    choice_cost(choice, here, other)              one layer's native and kernel cost side by side, with a note

kernelkit.doctor.confirm decides what to compile; this module compiles only the straight model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

# A formulation estimated more than SLOWER times the kernel's cost is "much slower": past the estimate's own
# error on networks unlike its calibration ("within 2x", docs/estimate.md), so the order cannot be noise.
SLOWER = 2.0
STRAIGHT_TIMEOUT = 300.0      # the straight compile is a comparison: it never holds patch up longer than this
STRAIGHT_READS = (".xml", ".onnx")      # what the 2021.4 plugin's reader takes as it is
MODEL = "kernelkit/facts/data/rvc2-estimate.toml"


def summary(est) -> dict:
    """What a patch report keeps of an Estimate (2 inference threads, the blob's SHAVEs)."""
    ddr, cmx = est.memory["ddr"], est.memory["cmx"]
    return {"device": "OAK (RVC2), 2 inference threads", "shaves": est.shaves,
            "latency_ms": round(est.latency_s * 1e3, 2), "fps": round(est.fps, 1),
            "enough_shaves": est.enough_shaves, "ddr_need_bytes": ddr["need_bytes"],
            "ddr_fits": ddr["fits"], "cmx_fits": cmx["fits"], "model": MODEL}


def straight_record(model_path, config: dict, patched_est, *, changed: bool, known_refusal: str | None,
                    options_given: bool) -> dict:
    """The straight compile (the real plugin on the model file as it is, at the patch folder's settings
    `config`) as report["estimate"]["straight"]: its estimate, or why there is none. Not compiled when the
    answer is known: `known_refusal` (what the plugin or its reader already refused), or `changed` False (the
    patched model is the file's own graph, so the patched blob is the straight one)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.compile import CompileFailed, compile_model
    from kernelkit.myriad.estimate import estimate_blob

    model_path = Path(model_path)
    if options_given:
        return {"compiled": None, "asked": False,
                "reason": "a straight compile takes the file as it is, without --input-shape/-value/--output"}
    if model_path.suffix.lower() not in STRAIGHT_READS:
        return {"compiled": None, "asked": False,
                "reason": f"the plugin's reader takes IR .xml and ONNX files, not {model_path.suffix or 'this'}"}
    if known_refusal:
        return {"compiled": False, "asked": False, "reason": known_refusal}
    if not changed:
        return {"compiled": True, "asked": False, "same_blob": True, **summary(patched_est)}
    with tempfile.TemporaryDirectory(prefix="kernelkit-straight-") as tmp:
        blob = Path(tmp) / "straight.blob"
        try:
            compile_model(model_path, blob, config=dict(config), graph_dump=False, timeout=STRAIGHT_TIMEOUT)
        except CompileFailed as exc:
            words = (exc.plugin_text or exc.message).strip().splitlines()
            found = {"compiled": False, "asked": True, "message": words[0] if words else ""}
            if exc.layer_name:
                found["layer"] = exc.layer_name
            return found
        except KernelkitError as exc:           # a timeout, a file the reader cannot take: no verdict
            return {"compiled": None, "asked": True, "reason": exc.message}
        est = estimate_blob(read_blob(blob))
    return {"compiled": True, "asked": True, **summary(est)}


def versus(patched: dict, straight: dict) -> dict | None:
    """The patched blob's estimate against the straight one's, when both compiled."""
    if not straight.get("compiled") or not straight.get("fps") or not patched.get("fps"):
        return None
    return {"fps_change_percent": round((patched["fps"] / straight["fps"] - 1) * 100, 1),
            "latency_change_ms": round(patched["latency_ms"] - straight["latency_ms"], 2)}


def text_line(estimate: dict) -> str:
    """The patch summary's line, e.g. "estimated on an OAK: 41.2 FPS patched vs 44.0 straight (-6 %)"."""
    head = f"estimated on an OAK (2 inference threads, {estimate['shaves']} SHAVEs): {estimate['fps']:.1f} FPS"
    straight = estimate.get("straight") or {}
    vs = estimate.get("vs_straight")
    if straight.get("same_blob"):
        return f"{head} patched and straight (the same graph)"
    if vs:
        return f"{head} patched vs {straight['fps']:.1f} straight ({vs['fps_change_percent']:+.0f} %)"
    if straight.get("compiled") is False:
        why = straight.get("reason") or straight.get("message") or ""
        return f"{head} patched; the straight model does not compile ({why})" if why else \
            f"{head} patched; the straight model does not compile"
    if straight.get("reason"):
        return f"{head} patched; no straight estimate: {straight['reason']}"
    return f"{head} patched"


def layer_costs(est, changes: list, layers: set[str]) -> dict[str, dict]:
    """Per user layer in `layers`: the estimated seconds and count of the blob's stages made from it (a stage's
    IR layers traced back through the patch's changes; an injected stage counts with its host). Needs the
    blob's stage -> layer map (`est` of a blob read with its graph dump)."""
    from kernelkit.model.patchdir import source_layer

    found = {name: {"seconds": 0.0, "stages": 0} for name in layers}
    for row in est.stages:
        owners = {source_layer(changes, name)[0] for name, _ in row.layers} & layers
        for owner in owners:
            found[owner]["seconds"] += row.seconds
            found[owner]["stages"] += 1
    return found


def choice_cost(choice: dict, here: dict | None, other: dict | None, other_note: str = "") -> dict:
    """One layer's cost record (report choices[i]["cost"]): `here` the layer's cost in the folder's blob (its
    chosen form), `other` in the blob of the patch with the other form; None where that blob is missing."""
    chosen = choice.get("chosen")
    forms = {chosen: here, ("kernel" if chosen == "native" else "native"): other}
    record: dict = {}
    for form in ("native", "kernel"):
        cost = forms.get(form)
        if cost and cost["stages"]:
            record[f"{form}_ms"] = round(cost["seconds"] * 1e3, 4)
            record[f"{form}_stages"] = cost["stages"]
        else:
            record[f"{form}_ms"] = None
    if record["native_ms"] and record["kernel_ms"]:
        ratio = record["native_ms"] / record["kernel_ms"]
        record["native_over_kernel"] = round(ratio, 2)
        if ratio > SLOWER:
            record["note"] = (f"the native formulation is estimated {ratio:.1f}x the library kernel's time on an "
                              f"OAK: --prefer fastest binds the kernel (its SHAVE .bin needs clc)")
        elif ratio < 1 / SLOWER:
            record["note"] = f"the library kernel is estimated {1 / ratio:.1f}x the native formulation's time"
        else:
            record["note"] = f"within {SLOWER:g}x of each other: the estimate does not tell them apart"
    else:
        missing = [form for form in ("native", "kernel") if not record[f"{form}_ms"]]
        record["note"] = f"no estimate of the {' and '.join(missing)} form" + (f": {other_note}" if other_note else "")
    return record


def cost_line(choice: dict) -> str | None:
    """The patch summary's line for one layer's cost record, or None without one."""
    cost = choice.get("cost")
    if not cost:
        return None
    show = lambda ms: "?" if ms is None else f"{ms * 1e3:.0f} us"      # noqa: E731
    return (f"{choice['layer']}: native formulation {show(cost['native_ms'])} vs library kernel "
            f"{show(cost['kernel_ms'])} estimated on an OAK; {cost['note']}")


def report_lines(report: dict) -> list[str]:
    """What `kernelkit patch` prints of the estimate after its summary: the estimate line, then per layer with
    both forms their costs."""
    lines = [text_line(report["estimate"])] if report.get("estimate") else []
    for choice in report.get("choices", []):
        line = cost_line(choice)
        if line:
            lines.append(f"  {'cost':<12} {line}")
    return lines
