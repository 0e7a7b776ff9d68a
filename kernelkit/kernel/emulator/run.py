"""emulate(): run a MYRIAD custom-layer binding the way the plugin would, on PoCL.

The plan (plan.py) says what runs; here its buffers are laid out in the worker's shared arena between guard zones,
filled, run in stage order, and checked after the run (guard zones, unwritten outputs, changed inputs).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.kernel.bindings import myriad_select
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import CustomLayer, source_file
from kernelkit.kernel.emulator import cache, host_fp16, layout, plan
from kernelkit.kernel.emulator.plan import Buffer, Context
from kernelkit.kernel.emulator.worker import (ALIGN, FLAG_STRIDE, GUARD_BYTE, Finish, Job, Region, WorkerCrashed,
                                              WorkerTimeout, client)

GUARD_MIN, GUARD_MAX = 16 << 10, 256 << 10   # bytes each side of every buffer


class DeviceCheckFailed(KernelkitError):
    """A device check failed: the kernel would misbehave on the VPU. `.findings` lists every problem."""

    def __init__(self, findings: list[Finding], *, path=None):
        self.findings = list(findings)
        errors = [f for f in self.findings if f.severity == "error"]
        head = errors[0] if errors else self.findings[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"device check failed: {head.message}{more}", path=path or head.path, line=head.line,
                         where=head.where, hint=head.hint)


@dataclass
class EmulationResult:
    outputs: list[np.ndarray]
    layer: CustomLayer
    findings: list[Finding] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _guard_bytes(nbytes: int) -> int:
    return _align(min(max(nbytes // 8, GUARD_MIN), GUARD_MAX))


@dataclass
class _Layout:
    """Where everything sits in the shared arena. Depends only on what the plan cache key holds."""

    size: int
    destinations: dict[int, Region]    # half output's buffer index -> the word that says where in the result pool
    staging: dict[int, Region]         # buffer index -> the fp16 bits of a float16 input, widened by the worker
    flags: Region                      # status words the worker writes; the parent resets them before a run
    poison_stats: dict[int, Region]    # output buffer index -> [elements still holding the poison, first index]
    guard_flags: dict[int, Region]     # buffer index -> "a guard zone lost its pattern"
    guards: tuple                      # (offset, nbytes) of every guard zone


def _tail(buf: Buffer) -> tuple[int, int]:
    """The guard zone after a buffer: from its end (rounded up to the page) plus `guard` bytes."""
    region = buf.region
    end = region.offset + region.nbytes
    return end, _align(region.offset + max(region.nbytes, 1)) - end + buf.guard


def _layout(job: Job, buffers: dict[tuple, Buffer], ctx: Context) -> _Layout:
    """Place every buffer as [guard][data][guard] at page-aligned offsets, then the fp16 inputs' staging, then
    the status words. Fill the job's device-side work: poison, rounding, conversion, checks."""
    ordered = sorted(buffers.values(), key=lambda b: b.index)
    offset = 0
    for buf in ordered:
        buf.guard = _guard_bytes(buf.data.nbytes)
        start = offset + buf.guard
        buf.region = Region(start, buf.data.nbytes)
        offset = _align(start + max(buf.data.nbytes, 1)) + buf.guard
    job.buffers = [b.region for b in ordered]
    staging = {}
    for buf in ordered:
        if buf.data.widen:
            staging[buf.index] = Region(offset, buf.data.count * 2)
            offset = _align(offset + max(buf.data.count * 2, 1))

    # status words, spaced so each is a valid sub-buffer origin for PoCL
    words = itertools.count(offset, FLAG_STRIDE)
    device_poison = [b for b in ordered if b.data.poison and np.dtype(b.data.dtype).itemsize == 4]
    poison_stats = {b.index: Region(next(words), 8) for b in device_poison}
    guard_flags = {b.index: Region(next(words), 4) for b in ordered}
    destinations = {b.index: Region(next(words), 8) for b in device_poison
                    if b.kind == "output" and b.pointee == "half" and ctx.precision == "fp16"}
    flags = Region(offset, next(words) - offset)
    offset = _align(flags.offset + flags.nbytes)

    job.poison = [(b.index, b.data.count) for b in device_poison]
    job.round_inputs = [(b.index, b.data.count) for b in ordered if b.data.device_round]
    job.widen_inputs = [(index, region, region.nbytes // 2) for index, region in staging.items()]
    for buf in device_poison:
        if buf.index in destinations:
            job.finish.append(Finish(buf.index, buf.data.count, destinations[buf.index], poison_stats[buf.index]))
        else:
            job.scan.append((buf.index, buf.data.count, poison_stats[buf.index]))
    job.guards = [(start, nbytes, guard_flags[b.index])
                  for b in ordered for start, nbytes in ((b.region.offset - b.guard, b.guard), _tail(b))]
    return _Layout(offset, destinations, staging, flags, poison_stats, guard_flags,
                   tuple(zone[:2] for zone in job.guards))


def _fill(arena, buffers: dict[tuple, Buffer], layout: _Layout, results: dict[int, int]) -> None:
    """Write what the worker does not: guard zones (when needed), inputs, zeroed scratch, narrow outputs' poison,
    and where in the result pool each fp16 output goes (`results`: buffer index -> pool offset)."""
    # The guard zones still hold the pattern when the last run used the same layout and its check passed.
    if arena.guards_intact != layout.guards:
        for start, nbytes in layout.guards:
            arena.view(np.uint8, start, nbytes).fill(GUARD_BYTE)
    arena.guards_intact = None          # until this run's check passes
    arena.view(np.uint8, layout.flags.offset, layout.flags.nbytes).fill(0)
    for stats in layout.poison_stats.values():
        arena.view(np.uint32, stats.offset + 4, 1)[0] = 0xFFFFFFFF      # first index: atomic_min starts here
    for index, word in layout.destinations.items():
        arena.view(np.uint64, word.offset, 1)[0] = results[index]
    for buf in buffers.values():
        data, region = buf.data, buf.region
        view = arena.view(data.dtype, region.offset, data.count)
        if data.poison:
            if buf.index not in layout.poison_stats:        # 4-byte outputs are poisoned by the worker
                _narrow_poison(view).fill(_narrow_poison_value(view))
        elif data.host_fp16:
            host_fp16.convert_into(view, data.source)
        elif data.widen:
            staging = layout.staging[buf.index]
            bits = arena.view(np.float16, staging.offset, data.count)
            np.copyto(bits.reshape(data.source.shape), data.source)
        elif data.source is not None:
            np.copyto(view.reshape(data.source.shape), data.source, casting="unsafe")
        else:
            view.fill(0)


def _narrow_poison(view: np.ndarray) -> np.ndarray:
    """Outputs narrower than 4 bytes are poisoned by the parent: fp16 words with a signalling NaN no arithmetic
    makes (0x7DA5; arithmetic="fp16" outputs), anything else byte by byte with 0xA5."""
    return view.view(np.uint16) if view.dtype == np.float16 else view.view(np.uint8)


def _narrow_poison_value(words: np.ndarray) -> int:
    return 0x7DA5 if words.dtype == np.uint16 else 0xA5


def _raised(arena, flag: Region) -> bool:
    return bool(arena.view(np.uint32, flag.offset, 1)[0])


def _guard_findings(ctx, arena, buf) -> None:
    """The error for a buffer whose guard zones lost their pattern: how far before and after it was written."""
    region, element = buf.region, np.dtype(buf.data.dtype).itemsize
    tail_start, tail = _tail(buf)
    before = np.flatnonzero(arena.view(np.uint8, region.offset - buf.guard, buf.guard) != GUARD_BYTE)
    after = np.flatnonzero(arena.view(np.uint8, tail_start, tail) != GUARD_BYTE)
    spots = []
    if before.size:
        spots.append(f"{-(int(before[0]) - buf.guard) // element} element(s) before its start")
    if after.size:
        spots.append(f"up to element {(int(after[-1]) + region.nbytes) // element} (it has {buf.data.count})")
    users = "; ".join(f"stage {k.stage} '{k.entry}' argument '{a}'" for k, a in buf.users)
    kernel, arg = buf.users[0]
    ctx.add("error", f"out-of-bounds write: {buf.kind} {buf.port} was written outside its {buf.data.count} "
            f"elements ({', '.join(spots)}); bound as {users}", kernel, arg,
            hint="check the index arithmetic and the work sizes")


def _logical_index(flat: int, fmt: str, shape) -> tuple[int, ...]:
    marker = np.zeros(math.prod(shape), bool)
    marker[flat] = True
    return tuple(int(i) for i in np.argwhere(layout.from_format(marker, fmt, shape))[0])


def _read_output(ctx, arena, buf, stats, shape, pool=None, pool_offset=None) -> np.ndarray:
    """The output in logical layout, with the poison check. An fp16 output in the result pool (`pool_offset`)
    becomes the caller's array where it lies when its format keeps the logical order; otherwise it is copied
    and its region freed."""
    data, region = buf.data, buf.region
    kernel, arg = buf.users[0]
    if stats is not None:         # the worker counted the poison left in a 4-byte output
        count, first = (int(v) for v in arena.view(np.uint32, stats.offset, 2))
    else:
        words = _narrow_poison(arena.view(data.dtype, region.offset, data.count))
        poisoned = (words.reshape(data.count, -1) == _narrow_poison_value(words)).all(axis=1)
        count = int(np.count_nonzero(poisoned))
        first = int(np.argmax(poisoned)) if count else 0
    if count:
        ctx.add("error", f"{count} of {data.count} output elements were never written (first at logical index "
                f"{_logical_index(first, buf.fmt, shape)}); the device leaves whatever was in memory there",
                kernel, arg, hint="check the work sizes cover the whole output")
    if pool_offset is not None:
        if layout.device_shape(shape, buf.fmt) == tuple(shape):
            return pool.lease(pool_offset, data.count, shape)
        result = layout.from_format(pool.view(pool_offset, data.count), buf.fmt, shape)     # reordered: a copy
        pool.free(pool_offset, data.count * 2)
        return result
    values = arena.view(data.dtype, region.offset, data.count)
    if buf.pointee == "float" and ctx.precision == "fp16":
        with np.errstate(over="ignore"):
            values = values.astype(np.float16)
    result = layout.from_format(values, buf.fmt, shape)
    # a view of the arena (or of a temporary) becomes the caller's own array; a reordered one already is
    return result if result.flags.owndata else result.copy()


def _execute(ctx, job, buffers, stages, layout: _Layout, timeout, timings) -> list[np.ndarray]:
    worker = client()
    with worker.session() as session:
        t0 = time.perf_counter()
        pool, offsets = session.results([item.count for item in job.finish])
        # buffer index -> (pool offset, elements) of the fp16 outputs not yet handed to the caller
        unclaimed = {item.buffer: (offset, item.count) for item, offset in zip(job.finish, offsets)}
        try:
            return _run(ctx, session, job, buffers, stages, layout, timeout, timings, t0, pool, unclaimed)
        finally:
            for offset, count in unclaimed.values():        # a failed call: nobody holds them
                pool.free(offset, count * 2)


def _run(ctx, session, job, buffers, stages, layout, timeout, timings, t0, pool, unclaimed) -> list[np.ndarray]:
    try:
        arena = session.arena(layout.size)
        session.prepare(job, arena, timeout)
        _fill(arena, buffers, layout, {index: offset for index, (offset, _) in unclaimed.items()})
        timings["fill"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        reply = session.run(job, arena, timeout)
    except WorkerTimeout:
        names = ", ".join(f"stage {s.kernel.stage} '{s.kernel.entry}'" for s in stages)
        ctx.add("error", f"the kernels did not finish within {timeout:g} s ({names}); the emulator stopped "
                "them", stages[-1].kernel,
                hint="look for a loop that never ends or a barrier not every work item reaches")
        raise DeviceCheckFailed(ctx.findings) from None
    except WorkerCrashed as exc:
        ctx.add("error", f"{exc}; a write far outside a buffer, a vector access at an address its type cannot have "
                f"(e.g. an int8 or float4 pointer cast to an odd offset) or a stack overflow does this. Worker log: "
                f"{exc.log[-600:] or '(empty)'}", stages[-1].kernel)
        raise DeviceCheckFailed(ctx.findings) from None
    timings["worker"] = time.perf_counter() - t1
    status = reply[0]
    if status == "build_error":
        key, log = reply[1], reply[2]
        stage = next(s for s in stages if s.program == key)
        hint = "fix the source; line numbers refer to your .cl file"
        if "invalid reinterpretation" in log:
            hint = ("a half is a 32-bit float on the emulator by default: as_ushortN / as_shortN / as_halfN of "
                    "half data go through the fp16 encoding, other reinterpretations of halves (as_int of a half2, "
                    "...) need arithmetic='fp16' (--arithmetic fp16), see docs/emulator.md")
        if "cannot be declared in local address space" in log and "__kk_dma_body_" in job.programs.get(key, ""):
            hint = ("with __dma_preload/__dma_postwrite the emulator runs the kernel body as a plain function, "
                    "where OpenCL forbids __local variables: bind the array as <Data type=\"local_data\">")
        raise KernelkitError(f"the kernel source does not build on the emulator:\n{log.strip()}",
                             path=source_file(ctx.layer, stage.kernel.sources[0], line=stage.kernel.line, suffix=".cl"),
                             where=ctx.where(stage.kernel), hint=hint)
    if status != "ok":
        raise KernelkitError(f"the emulator could not run the kernels: {reply[1]}", path=ctx.layer.path,
                             where=ctx.where())
    timings.update(reply[1])
    t2 = time.perf_counter()
    intact = True
    for buf in sorted(buffers.values(), key=lambda b: b.index):
        if _raised(arena, layout.guard_flags[buf.index]):
            intact = False
            _guard_findings(ctx, arena, buf)
        if buf.data.compare and buf.kind in ("input", "data"):
            now = arena.view(buf.data.dtype, buf.region.offset, buf.data.count)
            before = np.asarray(buf.data.source, buf.data.dtype).reshape(-1)
            changed = int(np.count_nonzero(now.view(np.uint8) != before.view(np.uint8)))
            if changed:
                kernel, arg = buf.users[0]
                ctx.add("warning", f"the kernel wrote into {buf.kind} {buf.port} ({changed} byte(s) changed); "
                        "on the device other layers may read this tensor", kernel, arg)
    outputs = []
    for port, shape in enumerate(ctx.output_shapes):
        buf = buffers.get(("output", port))
        if buf is None:
            raise ctx.error(f"no stage binds output {port}", hint="add <Tensor type=\"output\" port-index=\"0\">")
        in_pool = unclaimed.pop(buf.index, (None, 0))[0]     # _read_output leases or frees it
        outputs.append(_read_output(ctx, arena, buf, layout.poison_stats.get(buf.index), shape, pool, in_pool))
    if intact:
        arena.guards_intact = layout.guards
    timings["read"] = time.perf_counter() - t2
    return outputs


def emulate(bindings, layer_type: str, inputs: Sequence[np.ndarray], attrs=None, output_shapes=None, *,
            precision: str = "fp16", arithmetic: str = "fp32", timeout: float = 60.0, checks: bool = True,
            blobs=None, as_patched: bool = False, fold_batch: bool = False) -> EmulationResult:
    """Run the binding the plugin would choose for `layer_type` on `inputs` (logical layout, NCHW for 4-D).

    bindings: a MYRIAD binding XML path, or layers already loaded with kernelkit.kernel.bindings.myriad_read.
    attrs: the layer's IR attributes (lists become "1,2,3" as in the plugin's legacy params).
    output_shapes: default [inputs[0].shape].
    precision: "fp16" rounds float tensors to fp16 at the boundary (and in convert_half/vstore_half);
      "fp32" does not round anywhere.
    arithmetic: "fp32" (default) runs half arithmetic inside kernels in float32; "fp16" compiles the kernel with
      clang-15 for real 16-bit half storage and arithmetic, each operation rounded as on SHAVE (needs precision
      "fp16" and clang-15; see docs/emulator.md).
    checks: raise DeviceCheckFailed when a device check reports an error (findings are returned either way).
    blobs: arrays for <Data type="data" source=...> bindings (an extension of the plugin's layer blobs).
    as_patched: bind rank-0/1 tensors as [1, N], as `kernelkit patch` does (the real plugin refuses a custom
      layer with any rank-0/1 tensor); outputs come back in the shapes asked for.
    fold_batch: with as_patched, also bind 2-D [N, C] tensors as [1, N*C], as patch binds element-wise kernels
      (the plugin would split such a layer per sample); only for layers whose elements are independent. Other
      layers the plugin would split are ones patch does not bind: as_patched makes that a warning.
    Timeouts and crashes of the kernel always raise DeviceCheckFailed (there is no output).
    """
    if as_patched:
        wanted = [tuple(s) for s in output_shapes] if output_shapes is not None else \
            ([tuple(np.shape(inputs[0]))] if len(inputs) else None)
        def bind(shape):
            shape = myriad_select.plugin_shape(shape)
            return myriad_select.flattened_batch(shape) if fold_batch and len(shape) == 2 else shape

        bound = [np.reshape(x, bind(np.shape(x))) for x in inputs]
        run = functools.partial(emulate, bindings, layer_type, bound, attrs,
                                [bind(s) for s in wanted or []] or None, precision=precision, arithmetic=arithmetic,
                                timeout=timeout, blobs=blobs)
        try:
            result = run(checks=checks)
        except DeviceCheckFailed as failed:
            # kernelkit patch binds no layer the plugin would split per sample (it folds an element-wise one's
            # batch, refuses the rest): at such shapes only the kernel's math is run, with a warning.
            errors = [f for f in failed.findings if f.severity == "error"]
            if not failed.findings or any(f.plugin != "splits" for f in errors):
                raise
            result = run(checks=False)
            for finding in result.findings:
                if finding.plugin == "splits" and finding.severity == "error":
                    finding.severity = "warning"
                    finding.message += "; kernelkit patch binds no layer of these shapes"
        if wanted:
            result.outputs = [np.reshape(y, s) for y, s in zip(result.outputs, wanted)]
        return result
    started = time.perf_counter()
    if precision not in ("fp16", "fp32"):
        raise KernelkitError(f"precision must be 'fp16' or 'fp32', not {precision!r}")
    if arithmetic not in ("fp16", "fp32"):
        raise KernelkitError(f"arithmetic must be 'fp16' or 'fp32', not {arithmetic!r}")
    if arithmetic == "fp16" and precision != "fp16":
        raise KernelkitError("arithmetic 'fp16' stores every half as fp16, so it needs precision 'fp16'",
                             hint="drop precision='fp32', or use arithmetic='fp32'")
    arrays = []
    for i, item in enumerate(inputs):
        array = np.asarray(item)
        if array.dtype.kind not in "fiub":
            raise KernelkitError(f"input {i} has dtype {array.dtype}; give float or integer arrays", where=f"in{i}")
        arrays.append(array)
    if output_shapes is None:
        if not arrays:
            raise KernelkitError("no inputs and no output shape", hint="pass output_shapes")
        output_shapes = [tuple(arrays[0].shape)]
    shapes = []
    for shape in output_shapes:
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise KernelkitError(f"output shape {shape!r} is not a list of integers") from None
        if any(d <= 0 for d in shape):
            raise KernelkitError(f"output shape {shape} has a dimension <= 0")
        limits.check_tensor(shape, 4, "the output")
        shapes.append(shape)
    legacy = myriad_select.plugin_attrs(layer_type, attrs or {})
    blobs = dict(blobs or {})

    key = cache.plan_key(bindings, layer_type, legacy, arrays, shapes, (precision, arithmetic), blobs)
    cached = cache.PLANS.get(key) if key is not None else None
    if cached is not None and cached.still_valid():
        ctx = Context(cached.layer, cached.alternative, arrays, shapes, legacy, precision, arithmetic,
                       findings=list(cached.findings), layer_type=layer_type)
        recipe_ctx = Context(cached.layer, cached.alternative, arrays, shapes, legacy, precision, arithmetic,
                              layer_type=layer_type)
        buffers = {k: b.with_data(b.recipe(recipe_ctx, arrays, blobs))
                   for k, b in cached.buffers.items()}
        job, layout, stages = cached.job, cached.layout, cached.stages
    else:
        layers, source_path = plan.load_layers(bindings)
        layer = plan.choose_layer(layers, source_path, layer_type, legacy, arrays)
        ctx = Context(layer, plan.alternative_index(layers, layer), arrays, shapes, legacy, precision, arithmetic,
                       layer_type=layer_type)
        job, buffers, stages = plan.plan_stages(ctx, blobs)
        layout = _layout(job, buffers, ctx)
        if key is not None:
            cache.remember_plan(key, ctx, job, buffers, stages, layout)
    layer = ctx.layer
    timings = {"plan": time.perf_counter() - started}
    if checks and any(f.severity == "error" for f in ctx.findings):
        raise DeviceCheckFailed(ctx.findings)

    outputs = _execute(ctx, job, buffers, stages, layout, timeout, timings)
    timings["total"] = time.perf_counter() - started
    if checks and any(f.severity == "error" for f in ctx.findings):
        raise DeviceCheckFailed(ctx.findings)
    return EmulationResult(outputs=outputs, layer=layer, findings=ctx.findings, timings=timings)

