"""Run a compiled MYRIAD blob on the CPU: stages in blob order over the simulated memory, with a range check.

Each stage reads and writes numpy views of the byte arenas (memory.py); HW ops follow hw.py, software stages
sw.py; every stage output is rounded to its buffer's type (fp16 on the device). The range check records every
HW op whose value before its descale (the `scales` of weights analysis) passes fp16's 65504, and every stage
output that becomes inf or NaN, or that fp16 rounding collapses to all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.blob import hw, sw
from kernelkit.runners.blob.memory import Memory, logical

ACCUMULATORS = ("fp32", "fp16")
FP16_MAX = 65504.0
FIX_SCALING = ("compile with `MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO` in the compile config (a line of a patch "
               "folder's compile.conf), or scale the network's input down")
FIX_RANGE = "scale the network's input (or this layer's weights) so its values stay within fp16's ±65504"


@dataclass
class Finding:
    stage: int
    stage_type: str
    kind: str            # "overflow before descale" | "inf" | "nan" | "zero collapse"
    value: float         # the largest magnitude reached (before descale for HW ops)
    layer: str | None = None
    detail: str = ""

    @property
    def fix(self) -> str:
        return FIX_SCALING if self.kind == "overflow before descale" else FIX_RANGE

    def message(self) -> str:
        where = f"stage {self.stage} ({self.stage_type})" + (f", layer {self.layer!r}" if self.layer else "")
        value = f"{self.value:.6g}"
        held = "overflows fp16" if not np.isfinite(self.value) else f"holds {value}"
        text = {"overflow before descale": f"{held} before its descale (fp16 max 65504)",
                "inf": "produces inf" + (f" (exact values reach {value})" if np.isfinite(self.value) else ""),
                "nan": "produces NaN",
                "zero collapse": f"collapses to all zeros in fp16 (exact values up to {value})"}[self.kind]
        return f"{where} {text}{': ' + self.detail if self.detail else ''}; fix: {self.fix}"


@dataclass
class BlobRun:
    accumulator: str
    outputs: dict[str, np.ndarray]
    findings: list[Finding] = field(default_factory=list)
    stages: int = 0


def _logical_letters(order: str) -> str:
    return "".join(letter for letter in "NCDHW" if letter in order) if set(order) <= set("NCDHW") else order


def _to_float(view: np.ndarray) -> np.ndarray:
    return view.astype(np.float32) if view.dtype.kind == "f" else view.astype(np.int64)


def _write(view: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Round `values` to the view's type and store them; returns what was stored."""
    values = np.asarray(values)
    if values.shape != view.shape:
        if values.size == view.size:
            values = values.reshape(view.shape)
        else:
            values = np.broadcast_to(values, view.shape)
    if view.dtype.kind in "iu" and values.dtype.kind == "f":
        info = np.iinfo(view.dtype)
        values = np.clip(np.trunc(values), info.min, info.max)      # C conversion: toward zero
    with np.errstate(over="ignore", invalid="ignore"):
        stored = values.astype(view.dtype)
    view[...] = stored
    return stored


class Interpreter:
    def __init__(self, program, *, accumulator: str = "fp32", poison: int | None = None):
        if accumulator not in ACCUMULATORS:
            raise KernelkitError(f"unknown accumulator {accumulator!r}", where="--accumulator",
                                 hint="use fp32 or fp16")
        self.program = program
        self.accumulator = accumulator
        header = program.header
        self.memory = Memory(bss_size=header.bss_size, cmx_slices=header.cmx_slices, constants=program.constants,
                             inputs={i.buffer.io_index: i.size for i in program.inputs},
                             outputs={o.buffer.io_index: o.size for o in program.outputs}, poison=poison)
        self.findings: list[Finding] = []

    # --- I/O -----------------------------------------------------------------------------------------
    def set_inputs(self, arrays: list[np.ndarray]) -> None:
        for info, array in zip(self.program.inputs, arrays):
            buf = info.buffer
            letters = _logical_letters(buf.order)
            view = logical(self.memory.view(buf), buf.order, letters)
            array = np.asarray(array)
            if array.size != view.size:
                raise KernelkitError(f"input {info.name!r} has shape {array.shape}, the blob takes "
                                     f"{tuple(view.shape)}", where=info.name,
                                     hint="give the inputs in the model's shape (N, C, H, W order)")
            _write(view, array.reshape(view.shape))

    def get_outputs(self) -> dict[str, np.ndarray]:
        outputs = {}
        for info in self.program.outputs:
            buf = info.buffer
            view = logical(self.memory.view(buf), buf.order, _logical_letters(buf.order))
            outputs[info.name] = np.array(view, dtype=np.float32 if view.dtype.kind == "f" else view.dtype)
        return outputs

    def read(self, buffer) -> np.ndarray:
        """A copy of any buffer (a stage's, or a tensor the graph dump places) as it is now, axes in N, C, (D,)
        H, W order whatever its layout; floats as float32."""
        view = self.memory.view(buffer)
        letters = _logical_letters(buffer.order)
        if letters != buffer.order and set(letters) == set(buffer.order):
            view = logical(view, buffer.order, letters)
        return np.array(view, dtype=np.float32 if view.dtype.kind == "f" else view.dtype)

    # --- stages ---------------------------------------------------------------------------------------
    def run(self) -> None:
        for stage in self.program.stages:
            self.run_stage(stage)

    def run_stage(self, stage) -> None:
        try:
            if stage.type_code == 38:
                self._hw_stage(stage)
            else:
                self._sw_stage(stage)
        except MemoryError:
            raise KernelkitError(f"{stage.label()}: its parameters ask for more memory than this machine has",
                                 hint="the blob may be damaged; compile the model again") from None
        except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
            # Buffers that do not fit the stage's semantics: a blob this interpreter reads wrong, or a damaged one.
            raise KernelkitError(f"{stage.label()}: cannot run it on its buffers ({exc})",
                                 hint="report it with the blob (kernelkit blob info shows its buffers)") from None
        except KernelkitError as exc:
            if stage.label() in exc.message:
                raise
            raise KernelkitError(f"{stage.label()}: {exc.message}", hint=exc.hint) from None
        if stage.injected is not None:
            self.run_stage(stage.injected)

    def _check(self, stage, exact: np.ndarray, stored: np.ndarray) -> None:
        stored_f = stored.astype(np.float32) if stored.dtype.kind == "f" else None
        if stored_f is None or stored_f.size == 0:
            return
        with np.errstate(invalid="ignore"):
            peak = float(np.nanmax(np.abs(exact))) if np.isfinite(exact).any() else float("inf")
        if np.isnan(stored_f).any():
            self._find(stage, "nan", float("nan"))
        elif np.isinf(stored_f).any():
            self._find(stage, "inf", peak)
        elif not stored_f.any() and np.isfinite(peak) and peak > 0:
            self._find(stage, "zero collapse", peak)

    def _find(self, stage, kind: str, value: float, detail: str = "") -> None:
        self.findings.append(Finding(stage.index, stage.type_name, kind, value, stage.layer, detail))

    def _sw_stage(self, stage) -> None:
        entry = sw.STAGES.get(stage.type_code)
        if entry is None:
            raise KernelkitError(f"{stage.label()}: the interpreter cannot run stage type {stage.type_code} "
                                 f"({stage.type_name})",
                                 hint="this stage type has no numpy semantics in kernelkit yet; report it "
                                      "with the blob")
        _, fn = entry
        # The reader names each buffer's role: what the stage reads (blob order), what it writes, scratch.
        ins = [b for b in stage.buffers if b.direction == "input" and b.location != "None"]
        outs = [b for b in stage.buffers if b.direction == "output"]
        if not outs:
            raise KernelkitError(f"{stage.label()} writes no buffer")
        if len(outs) > 1:
            self._multi_output_stage(stage, fn, ins, outs)
            return
        out = outs[0]
        out_view = self.memory.view(out)
        aligned = stage.type_code in sw.ALIGNED
        by_letter = stage.type_code in sw.BY_LETTER and set(out.order) <= set("NCDHW")
        if by_letter:                                   # semantics on named dims: N, C, H, W whatever the layout
            out_view = logical(out_view, out.order, _logical_letters(out.order))
        arrays = []
        for number, b in enumerate(ins):
            view = self.memory.view(b)
            if by_letter and number == 0:
                view = logical(view, b.order, _logical_letters(b.order))
            elif aligned and b.order != out.order:
                view = self._align(stage, view, b.order, out.order, out_view.shape)
            arrays.append(_to_float(view))
        if stage.type_code in sw.CONVS:
            kx, ky, _, _, _, _, dx, dy = (int(v) for v in stage.params[:8])
            arrays[1] = sw.sw_conv_weights(arrays[1], hwc=ins[0].order.endswith("C"), kx=kx, ky=ky, dil=(dx, dy),
                                           ic=arrays[0].shape[1], oc=out_view.shape[1],
                                           depthwise=stage.type_code == sw.DEPTH_CONV)
        with np.errstate(all="ignore"):
            exact = np.asarray(fn(arrays, stage.params, tuple(out_view.shape)))
        if aligned and exact.shape != out_view.shape and exact.size == out_view.size and \
                len(ins) == 1 and ins[0].order != out.order:
            exact = exact.reshape(out_view.shape)
        stored = _write(out_view, exact.astype(np.float32) if exact.dtype.kind == "f" else exact)
        # Report where a range problem starts, not every stage it flows through.
        if exact.dtype.kind == "f" and all(a.dtype.kind != "f" or np.isfinite(a).all() for a in arrays):
            self._check(stage, exact, stored)

    def _multi_output_stage(self, stage, fn, ins, outs) -> None:
        """A stage writing several tensors (TopK: values and indices): each in its buffer's own type."""
        arrays = [_to_float(self.memory.view(b)) for b in ins]
        views = [self.memory.view(b) for b in outs]
        with np.errstate(all="ignore"):
            results = fn(arrays, stage.params, [tuple(v.shape) for v in views])
        for view, values in zip(views, results):
            values = np.asarray(values)
            stored = _write(view, values.astype(np.float32) if values.dtype.kind == "f" else values)
            if values.dtype.kind == "f":
                self._check(stage, values, stored)

    @staticmethod
    def _align(stage, view: np.ndarray, order: str, out_order: str, out_shape) -> np.ndarray:
        """An element-wise input in the output's axis order. The same dims in another layout are matched by
        letter; eltwise operands of lower rank broadcast by position, innermost first (numpy's trailing
        alignment on the memory-order views); per-channel operands (Bias, Scale, PRelu) by letter, or by
        position when their dims only fit that way (a PRelu slope along the innermost axis)."""
        if set(order) == set(out_order):
            return logical(view, order, out_order)
        if stage.type_code in sw.ELTWISE:
            return view
        extra = "".join(letter for letter in order if letter not in out_order)
        by_letter = logical(view, order, out_order + extra)
        try:
            np.broadcast_shapes(by_letter.shape[:len(out_shape)], tuple(out_shape))
            return by_letter
        except ValueError:
            return view

    def _hw_stage(self, stage) -> None:
        for number, op in enumerate(stage.hw_ops):
            self._hw_op(stage, number, op)

    def _hw_op(self, stage, number: int, op) -> None:
        bufs = stage.buffers

        def nchw(index):
            b = bufs[index]
            return logical(self.memory.view(b), b.order, "NCHW")

        xs, outs = nchw(op.input), nchw(op.output)
        if xs.shape[0] != outs.shape[0]:
            raise KernelkitError(f"{stage.label()}: HW op {number} reads {xs.shape[0]} items and writes "
                                 f"{outs.shape[0]}")
        for item in range(xs.shape[0]):             # an N axis: the engine runs the op on each item's planes
            self._hw_item(stage, number, op, xs[item], outs[item])

    def _hw_item(self, stage, number: int, op, x: np.ndarray, out: np.ndarray) -> None:
        bufs = stage.buffers
        c_out, ho, wo = out.shape
        off, num = op.out_chan_offset, op.out_num_chans
        if op.op_type == hw.POOL:
            kh, kw = op.kernel_h, op.kernel_w
            values = hw.pool(x[off:off + num] if x.shape[0] >= off + num else x, op.pool_type, kh, kw, op.stride,
                             ho, wo, hw._pads(op, kh, kw))
            self._hw_finish(stage, number, op, values, out, off, num, None, None, x=x)
            return
        if op.op_type not in (hw.CONV, hw.CONV_POOL):
            raise KernelkitError(f"{stage.label()}: HW op {number} of type {op.name} is not one the interpreter "
                                 "runs yet", hint="report it with the blob")
        raw = self.memory.view(bufs[op.coeffs])
        kh, kw = op.kernel_h, op.kernel_w
        ic_ext = raw.shape[-3] if raw.ndim >= 3 else x.shape[0]
        weights = hw.unpack_weights(raw, ic_ext, kh, kw)[off:off + num]
        xin = x[:ic_ext]
        if xin.shape[0] < ic_ext:
            raise KernelkitError(f"{stage.label()}: HW op {number} weights take {ic_ext} input channels, the "
                                 f"input has {xin.shape[0]}")
        if op.op_type == hw.CONV_POOL:
            ph, pw = op.pool_kernel[1], op.pool_kernel[0]
            pads = hw._pads(op, kh, kw)
            ch = (x.shape[1] + pads[0] + pads[1] - kh) // op.stride + 1
            cw = (x.shape[2] + pads[2] + pads[3] - kw) // op.stride + 1
            sums = hw.conv(xin, weights, op.stride, ch, cw, pads, self.accumulator)
        else:
            sums = hw.conv(xin, weights, op.stride, ho, wo, hw._pads(op, kh, kw), self.accumulator)
        bias = self._channel_vector(bufs, op.biases, off, num)
        scale = self._channel_vector(bufs, op.scales, off, num)
        self._hw_finish(stage, number, op, sums, out, off, num, bias, scale,
                        pool=(ph, pw) if op.op_type == hw.CONV_POOL else None, x=xin)

    def _channel_vector(self, bufs, index: int, off: int, num: int):
        if index < 0:
            return None
        return np.asarray(self.memory.view(bufs[index]), np.float32).reshape(-1)[off:off + num]

    def _hw_finish(self, stage, number, op, values, out, off, num, bias, scale, pool=None, x=None) -> None:
        fp16 = self.accumulator == "fp16"

        def rnd(v):
            return v.astype(np.float16).astype(np.float32) if fp16 else v

        with np.errstate(over="ignore", invalid="ignore"):
            if bias is not None:
                values = rnd(values + bias[:, None, None])
            if op.relu is not None:
                t0, a0, a1 = op.relu
                values = rnd(np.where(values >= t0, values * a1, values * a0))
            if scale is not None:
                peak = float(np.max(np.abs(values))) if values.size else 0.0
                if (not np.isfinite(peak) or peak > FP16_MAX) and np.isfinite(x).all():
                    self._find(stage, "overflow before descale", peak,
                               f"HW op {number} ({op.name}), weights and biases scaled by "
                               f"{1 / float(np.min(scale)):.6g} by weights analysis")
                values = values * scale[:, None, None]
            if op.clamp_max is not None:
                values = np.clip(values, 0.0, op.clamp_max)
            if pool is not None:
                ph, pw = pool
                c, h, w = values.shape
                ho, wo = out.shape[1], out.shape[2]
                win = values[:, :ho * ph, :wo * pw].reshape(c, ho, ph, wo, pw)
                values = win.max(axis=(2, 4))
        target = out[off:off + num] if out.shape[0] >= off + num and out.shape[0] != values.shape[0] else out
        values = values[:, :target.shape[1], :target.shape[2]]
        stored = _write(target, values)
        if np.isfinite(x).all():
            self._check(stage, values, stored)


def run_stages(program, inputs: list[np.ndarray], *, accumulator: str = "fp32", poison: int | None = None):
    """Run the blob stage by stage, yielding (stage, interpreter) after each stage (its injected stage
    included), so the caller can read any buffer (`Interpreter.read`) before later stages reuse the memory, and
    stop when it has seen enough. A blob of batch B runs its first item only (inputs split as run_program does)."""
    batch = max(int(program.header.batch_size), 1)
    items = []
    for info, array in zip(program.inputs, (np.asarray(a) for a in inputs)):
        one = int(np.prod(info.buffer.logical_shape()))
        batched = batch > 1 and array.ndim >= 1 and array.shape[0] == batch and array.size == batch * one
        items.append(np.split(array, batch)[0] if batched else array)
    interp = Interpreter(program, accumulator=accumulator, poison=poison)
    interp.set_inputs(items)
    for stage in program.stages:
        interp.run_stage(stage)
        yield stage, interp


def run_program(program, inputs: list[np.ndarray], *, accumulator: str = "fp32",
                poison: int | None = None) -> BlobRun:
    """Run the blob once on `inputs`. A blob of batch B (header) holds the graph of one item, which the
    plugin's runtime runs B times: inputs whose first axis holds B items are split, and the outputs stacked."""
    batch = max(int(program.header.batch_size), 1)
    inputs = [np.asarray(a) for a in inputs]
    items = []
    for info, array in zip(program.inputs, inputs):
        one = int(np.prod(info.buffer.logical_shape()))
        batched = batch > 1 and array.ndim >= 1 and array.shape[0] == batch and array.size == batch * one
        items.append(np.split(array, batch) if batched else [array] * batch)
    runs = []
    findings: list[Finding] = []
    for item in range(batch):
        interp = Interpreter(program, accumulator=accumulator, poison=poison)
        interp.set_inputs([chunks[item] for chunks in items])
        interp.run()
        runs.append(interp.get_outputs())
        findings += [f for f in interp.findings if f not in findings]
    outputs = dict(runs[0])
    if batch > 1:                                       # a tensor with an N axis is per item; others are shared
        for info in program.outputs:
            if "N" in info.buffer.order:
                outputs[info.name] = np.concatenate([r[info.name] for r in runs])
    return BlobRun(accumulator, outputs, findings, len(program.stages))
