"""Run a compiled MYRIAD blob on the CPU: stages in blob order over the simulated memory, with a range check.

Each stage reads and writes numpy views of the byte arenas (memory.py); HW ops follow hw.py, software stages
sw.py, Custom stages run their kernel's .cl on the SHAVE emulator (custom.py); every stage output is rounded to
its buffer's type (fp16 on the device). The range check records every HW op whose value before its descale (the
`scales` of weights analysis) passes fp16's 65504, and every stage output that becomes inf or NaN, or that fp16
rounding collapses to all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.blob import hw, sw
from kernelkit.runners.blob.memory import Memory, logical

ACCUMULATORS = ("fp32", "fp16")
FP16_MAX = 65504.0
FIX_SCALING = ("compile with `MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO` in the compile config (a line of a patch "
               "folder's compile.conf), or scale the network's input down")
FIX_RANGE = "scale the network's input (or this layer's weights) so its values stay within fp16's ±65504"
FIX_KERNEL = "fix the kernel (kernelkit emulate runs its layer alone with every device check)"
FIX_BINDING = ("pass the binding and .cl the blob was compiled with (--kernels), or compile the folder again after "
               "changing them")


@dataclass
class Finding:
    stage: int
    stage_type: str
    kind: str            # "overflow before descale" | "inf" | "nan" | "zero collapse" | "kernel" | "binding differs"
    value: float         # the largest magnitude reached (before descale for HW ops)
    layer: str | None = None
    detail: str = ""

    @property
    def fix(self) -> str:
        return {"overflow before descale": FIX_SCALING, "kernel": FIX_KERNEL,
                "binding differs": FIX_BINDING}.get(self.kind, FIX_RANGE)

    def message(self) -> str:
        where = f"stage {self.stage} ({self.stage_type})" + (f", layer {self.layer!r}" if self.layer else "")
        value = f"{self.value:.6g}"
        held = "overflows fp16" if not np.isfinite(self.value) else f"holds {value}"
        text = {"overflow before descale": f"{held} before its descale (fp16 max 65504)",
                "inf": "produces inf" + (f" (exact values reach {value})" if np.isfinite(self.value) else ""),
                "nan": "produces NaN",
                "zero collapse": f"collapses to all zeros in fp16 (exact values up to {value})",
                "kernel": "on the emulator", "binding differs": "differs from its binding"}[self.kind]
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
        np.copyto(view, values, casting="unsafe")       # astype's rounding, with no temporary
    return view


class Interpreter:
    def __init__(self, program, *, accumulator: str = "fp32", poison: int | None = None, kernels=None,
                 reference: bool = False):
        if accumulator not in ACCUMULATORS:
            raise KernelkitError(f"unknown accumulator {accumulator!r}", where="--accumulator",
                                 hint="use fp32 or fp16")
        self.program = program
        self.accumulator = accumulator
        self.reference = reference          # HW convs the unoptimised way (tests compare the two)
        header = program.header
        self.memory = Memory(bss_size=header.bss_size, cmx_slices=header.cmx_slices,
                             constants=program.const_arena(),
                             inputs={i.buffer.io_index: i.size for i in program.inputs},
                             outputs={o.buffer.io_index: o.size for o in program.outputs}, poison=poison,
                             geometry=program.prepared.setdefault("views", {}))
        self.findings: list[Finding] = []
        self.kernels = kernels          # custom.KernelSet: the bindings and .cl files Custom stages run with
        self._columns: dict = {}

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
            elif stage.custom is not None:
                self._custom_stage(stage)
            else:
                self._sw_stage(stage)
        except MemoryError:
            raise KernelkitError(f"{stage.label()}: its parameters ask for more memory than this machine has",
                                 hint="the blob may be damaged; compile the model again") from None
        except (ValueError, IndexError, KeyError, TypeError, ArithmeticError) as exc:
            # Buffers that do not fit the stage's semantics: a blob this interpreter reads wrong, or a damaged one.
            raise KernelkitError(f"{stage.label()}: cannot run it on its buffers ({exc})",
                                 hint="report it with the blob (kernelkit blob info shows its buffers)") from None
        except KernelkitError as exc:
            if stage.label() in exc.message:
                raise
            raise KernelkitError(f"{stage.label()}: {exc.message}", hint=exc.hint) from None
        if stage.injected is not None:
            self.run_stage(stage.injected)

    def _check(self, stage, exact: np.ndarray, stored: np.ndarray, inputs_finite=None) -> None:
        """Range findings on a stage's stored output; `inputs_finite()` says whether the stage read only finite
        values (a problem is reported where it starts, not in every stage it flows through)."""
        if stored.dtype.kind != "f" or stored.size == 0:
            return
        if stored.dtype == np.float16:                  # one pass over the magnitude bits
            top = int((stored.view(np.uint16) & 0x7FFF).max())
            finite, nonzero = top < 0x7C00, top > 0
        else:
            finite, nonzero = bool(np.isfinite(stored).all()), bool(stored.any())
        if finite and nonzero:
            return
        if inputs_finite is not None and not inputs_finite():
            return
        with np.errstate(invalid="ignore"):
            peak = float(np.nanmax(np.abs(exact))) if np.isfinite(exact).any() else float("inf")
        if np.isnan(stored).any():
            self._find(stage, "nan", float("nan"))
        elif not finite:
            self._find(stage, "inf", peak)
        elif np.isfinite(peak) and peak > 0:
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
        if stage.type_code == sw.COPY and len(ins) == 1 and not by_letter:
            view = self.memory.view(ins[0])
            if aligned and ins[0].order != out.order:
                view = self._align(stage, view, ins[0].order, out.order, out_view.shape)
            if view.dtype == out_view.dtype:            # the values as they are: nothing to round or check
                _write(out_view, view)
                return
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
        stored = _write(out_view, exact.astype(np.float32, copy=False) if exact.dtype.kind == "f" else exact)
        if exact.dtype.kind == "f":
            self._check(stage, exact, stored,
                        lambda: all(a.dtype.kind != "f" or np.isfinite(a).all() for a in arrays))

    def _custom_stage(self, stage) -> None:
        """A Custom stage: its kernel's .cl on the SHAVE emulator, on the stage's own buffers, scalars and work
        sizes; what the binding says for these shapes is compared with them (custom.py)."""
        from kernelkit.kernel.bindings.model import TensorParam
        from kernelkit.kernel.emulator import cache
        from kernelkit.kernel.emulator.launch import LaunchArg, float_word, run_kernel
        from kernelkit.runners.blob import custom as customs

        c = stage.custom
        entry = f"'{c.entry}'" if c.entry else "(its binary names none)"
        if self.kernels is None:
            raise KernelkitError(f"{stage.label()} runs the custom kernel {entry}: the blob holds the kernel's "
                                 "binary, not its OpenCL source, so the interpreter needs the binding and the .cl",
                                 hint=customs.BINDINGS_HINT)
        candidates = self.kernels.candidates(c)
        if not candidates:
            raise KernelkitError(f"{stage.label()} runs the custom kernel {entry}, and no <Kernel entry=> of the "
                                 f"bindings given ({self.kernels.describe()}) names it",
                                 hint=customs.BINDINGS_HINT + " that bind this layer")
        attrs = self.kernels.layer_attrs(stage.layer)
        checked = []
        for bound in candidates:
            sources = bound.sources()
            signature = next((s for s in cache.signatures("\n".join(t for _, t in sources), sources[0][0])
                              if s.name == bound.kernel.entry), None)
            if signature is None:
                raise KernelkitError(f"{stage.label()}: no kernel '{bound.kernel.entry}' in "
                                     f"{', '.join(Path(p).name for p, _ in sources)}", path=bound.file,
                                     line=bound.kernel.line, hint="run the .cl the blob's kernel was built from")
            if len(signature.args) != len(c.args):
                raise KernelkitError(f"{stage.label()}: kernel '{bound.kernel.entry}' declares "
                                     f"{len(signature.args)} argument(s) in {Path(sources[0][0]).name} and the blob "
                                     f"passes {len(c.args)}: the .cl is not the one the blob was compiled from",
                                     path=sources[0][0], hint=FIX_BINDING)
            checked.append((bound, sources, signature, customs.cross_check(bound, c, signature, attrs)))
            if not checked[-1][3]:
                break
        # the first alternative that agrees with the blob, else the best match with what differs
        bound, sources, signature, differences = next((item for item in checked if not item[3]), checked[0])
        for difference in differences:
            self._find(stage, "binding differs", 0.0, f"{bound.label()}: {difference}")
        params = {p.arg_name: p for p in bound.kernel.params}
        args, buffers = [], {}
        num_inputs = len(c.inputs)
        for index, (decl, arg) in enumerate(zip(signature.args, c.args)):
            if arg.kind == "buffer":
                buf = c.buffers[int(arg.value)]
                if buf.location == "None" or int(arg.value) == num_inputs:
                    raise KernelkitError(f"{stage.label()}: argument '{decl.name}' is bound to buffer "
                                         f"{int(arg.value)}, which holds no tensor",
                                         hint="the blob may be damaged; compile the model again")
                raw = np.ascontiguousarray(self.memory.view(buf)).reshape(-1).view(np.uint8)
                param = params.get(decl.name)
                args.append(LaunchArg(decl.name, "buffer", raw, writes=int(arg.value) > num_inputs,
                                      layer_output=isinstance(param, TensorParam) and param.type == "output"))
                buffers[index] = buf
            elif arg.kind == "float":
                args.append(LaunchArg(decl.name, "float", float_word(arg.value)))
            else:
                args.append(LaunchArg(decl.name, arg.kind, int(arg.value)))
        glob, local = customs.launch_sizes(c, stage.label())
        inputs_finite = all(np.isfinite(self.memory.view(b)).all() for b in c.inputs
                            if b.location != "None" and b.numpy_dtype.startswith("<f"))
        result = run_kernel(sources, bound.kernel.entry, args, glob, local)
        for problem in result.problems:
            self._find(stage, "kernel", 0.0, f"kernel '{bound.kernel.entry}' ({bound.label()}): {problem}")
        for index, device in result.buffers.items():
            buf = buffers[index]
            view = self.memory.view(buf)
            view[...] = device.view(buf.numpy_dtype).reshape(view.shape)
            if args[index].layer_output and view.dtype.kind == "f" and inputs_finite:
                self._check(stage, result.values[index], np.asarray(view).reshape(-1))

    def _multi_output_stage(self, stage, fn, ins, outs) -> None:
        """A stage writing several tensors (TopK: values and indices): each in its buffer's own type."""
        arrays = [_to_float(self.memory.view(b)) for b in ins]
        views = [self.memory.view(b) for b in outs]
        with np.errstate(all="ignore"):
            results = fn(arrays, stage.params, [tuple(v.shape) for v in views])
        for view, values in zip(views, results):
            values = np.asarray(values)
            stored = _write(view, values.astype(np.float32, copy=False) if values.dtype.kind == "f" else values)
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
        # Columns of an input several ops read (the output-channel blocks of one tile), until an op writes
        # over their bytes: ops of one stage may chain (merged stages).
        self._columns: dict = {}
        for number, op in enumerate(stage.hw_ops):
            self._hw_op(stage, number, op)
            written = stage.buffers[op.output]
            for key in [k for k in self._columns if _overlap(stage.buffers[k[0]], written)]:
                del self._columns[key]

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
            self._hw_item(stage, number, op, xs[item], outs[item], item)

    def _hw_item(self, stage, number: int, op, x: np.ndarray, out: np.ndarray, item: int = 0) -> None:
        c_out, ho, wo = out.shape
        off, num = op.out_chan_offset, op.out_num_chans
        if op.op_type == hw.POOL:
            kh, kw = op.kernel_h, op.kernel_w
            values = hw.pool(x[off:off + num] if x.shape[0] >= off + num else x, op.pool_type, kh, kw, op.stride,
                             ho, wo, hw._pads(op, kh, kw))
            self._hw_finish(stage, number, op, values, out, off, num, None, None, None, _Finite(x))
            return
        if op.op_type not in (hw.CONV, hw.CONV_POOL):
            raise KernelkitError(f"{stage.label()}: HW op {number} of type {op.name} is not one the interpreter "
                                 "runs yet", hint="report it with the blob")
        plan = self._conv_plan(stage, number, op, x.shape, (ho, wo))
        xin = x[:plan.ic_ext]
        if self.reference:
            # Every op unpacks its stage's whole weights buffer and sums through conv().
            weights = hw.unpack_weights(self.memory.view(stage.buffers[op.coeffs]), plan.ic_ext, op.kernel_h,
                                        op.kernel_w)[off:off + num]
            sums = hw.conv(xin, weights, op.stride, plan.ch, plan.cw, plan.pads, self.accumulator)
        else:
            dtype = np.float64 if self.accumulator == "fp32" else np.float32
            weights = self._prepared(stage, ("weights", dtype, off, num), op.coeffs, lambda raw: (
                np.ascontiguousarray(plan_matrix(raw, plan, op, off, num), dtype)))
            key = (op.input, item, op.kernel_h, op.kernel_w, op.stride, plan.ch, plan.cw, plan.pads, plan.ic_ext,
                   dtype)
            cols = self._columns.get(key)
            if cols is None:
                cols = self._columns[key] = hw.columns(xin, op.kernel_h, op.kernel_w, op.stride, plan.ch, plan.cw,
                                                       plan.pads, dtype)
            conv = hw.conv_fp32 if self.accumulator == "fp32" else hw.conv_fp16
            sums = conv(weights, cols, plan.ch, plan.cw)
        bias = self._channel_vector(stage, op.biases, off, num)
        scale = self._channel_vector(stage, op.scales, off, num)
        self._hw_finish(stage, number, op, sums, out, off, num, bias, scale, pool=plan.pool,
                        finite_in=_Finite(xin))

    def _conv_plan(self, stage, number: int, op, x_shape, out_hw) -> "_ConvPlan":
        """What a conv op computes on, from the blob alone: worked out (and its sizes checked) once a program."""
        key = ("plan", id(stage), number, x_shape, out_hw)
        plan = self.program.prepared.get(key)
        if plan is not None:
            return plan
        raw = stage.buffers[op.coeffs]
        kh, kw = op.kernel_h, op.kernel_w
        ic_ext = raw.dims_innermost[2] if raw.dims_innermost and len(raw.dims_innermost) >= 3 else x_shape[0]
        if x_shape[0] < ic_ext:
            raise KernelkitError(f"{stage.label()}: HW op {number} weights take {ic_ext} input channels, the "
                                 f"input has {x_shape[0]}")
        pads = hw._pads(op, kh, kw)
        pool = None
        if op.op_type == hw.CONV_POOL:
            pool = (op.pool_kernel[1], op.pool_kernel[0])
            ch = (x_shape[1] + pads[0] + pads[1] - kh) // op.stride + 1
            cw = (x_shape[2] + pads[2] + pads[3] - kw) // op.stride + 1
        else:
            ch, cw = out_hw
        from kernelkit.runners.blob.sw import bounded

        bounded((ic_ext * kh * kw * 2, ch * cw), "a HW convolution's columns")    # float64: two words each
        bounded((ic_ext, max((ch - 1) * op.stride + kh, x_shape[1] + pads[0]),
                 max((cw - 1) * op.stride + kw, x_shape[2] + pads[2])))
        plan = _ConvPlan(ic_ext, pads, ch, cw, pool)
        self.program.prepared[key] = plan
        return plan

    def _prepared(self, stage, key, index: int, make):
        """`make(view of buffer index)`, kept in the program when the buffer is in the read-only const section
        (the same bytes every run), by the bytes it views: the tiles of a conv have buffers of their own over
        the same weights."""
        buf = stage.buffers[index]
        if buf.location != "Blob":
            return make(self.memory.view(buf))
        key = (buf.offset, buf.dims_innermost, buf.strides_innermost, buf.data_type, *key)
        value = self.program.prepared.get(key)
        if value is None:
            value = self.program.prepared[key] = make(self.memory.view(buf))
        return value

    def _channel_vector(self, stage, index: int, off: int, num: int):
        if index < 0:
            return None
        return self._prepared(stage, ("vector", off, num), index, lambda raw: (
            np.asarray(raw, np.float32).reshape(-1)[off:off + num]))

    def _hw_finish(self, stage, number, op, values, out, off, num, bias, scale, pool, finite_in) -> None:
        fp16 = self.accumulator == "fp16"

        def rnd(v):
            return v.astype(np.float16).astype(np.float32) if fp16 else v

        # `values` is this op's own array: in place, each step rounds (or not) exactly as a new array would.
        with np.errstate(over="ignore", invalid="ignore"):
            if bias is not None:
                values += bias[:, None, None]
                values = rnd(values)
            if op.relu is not None:
                t0, a0, a1 = op.relu
                if a1 == 1:                             # x * 1 is x: scale only what falls below t0
                    np.multiply(values, a0, out=values, where=values < t0)
                else:
                    values = np.where(values >= t0, values * a1, values * a0)
                values = rnd(values)
            if scale is not None:
                peak = max(float(values.max()), -float(values.min())) if values.size else 0.0
                if (not np.isfinite(peak) or peak > FP16_MAX) and finite_in():
                    self._find(stage, "overflow before descale", peak,
                               f"HW op {number} ({op.name}), weights and biases scaled by "
                               f"{1 / float(np.min(scale)):.6g} by weights analysis")
                values *= scale[:, None, None]
            if op.clamp_max is not None:
                np.clip(values, 0.0, op.clamp_max, out=values)
            if pool is not None:
                ph, pw = pool
                c, h, w = values.shape
                ho, wo = out.shape[1], out.shape[2]
                win = values[:, :ho * ph, :wo * pw].reshape(c, ho, ph, wo, pw)
                values = win.max(axis=(2, 4))
        target = out[off:off + num] if out.shape[0] >= off + num and out.shape[0] != values.shape[0] else out
        values = values[:, :target.shape[1], :target.shape[2]]
        stored = _write(target, values)
        self._check(stage, values, stored, finite_in)


class _Finite:
    """Whether an op's input is all finite, worked out on first asking (most ops never need it)."""

    def __init__(self, x: np.ndarray):
        self.x, self.answer = x, None

    def __call__(self) -> bool:
        if self.answer is None:
            self.answer = bool(np.isfinite(self.x).all())
        return self.answer


@dataclass
class _ConvPlan:
    ic_ext: int                  # input channels the weights take (the engine's extended count)
    pads: tuple                  # top, bottom, left, right
    ch: int                      # the conv's output rows and columns (before a CONV_POOL's pooling)
    cw: int
    pool: tuple | None           # CONV_POOL's pooling kernel (h, w)


def _overlap(a, b) -> bool:
    """Whether two buffers' bytes can meet (the same arena, overlapping spans)."""
    if a.location != b.location or (a.location in ("Input", "Output") and a.io_index != b.io_index):
        return False
    return a.offset < b.offset + b.span_bytes and b.offset < a.offset + a.span_bytes


def plan_matrix(raw, plan: _ConvPlan, op, off: int, num: int) -> np.ndarray:
    """An op's weights as the fast paths multiply them: (num, IC_ext*kh*kw) float32 (fp16 values)."""
    weights = hw.unpack_weights(raw, plan.ic_ext, op.kernel_h, op.kernel_w, off, num)
    return weights.reshape(weights.shape[0], -1)


_BLAS: list = []


def one_blas_thread():
    """A context in which numpy's BLAS uses one thread. A run is hundreds of mid-size matrix products between
    numpy passes; OpenBLAS's second thread waits for its turn on a shared machine far longer than it saves
    (ResNet-50 on 2 busy cores: 3.8 s with one thread, 61 s with two; the results are the same bits)."""
    from threadpoolctl import ThreadpoolController

    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


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
                poison: int | None = None, kernels=None, reference: bool = False) -> BlobRun:
    """Run the blob once on `inputs`. A blob of batch B (header) holds the graph of one item, which the
    plugin's runtime runs B times: inputs whose first axis holds B items are split, and the outputs stacked.
    `kernels`: a custom.KernelSet, the bindings and .cl files Custom stages run with."""
    batch = max(int(program.header.batch_size), 1)
    inputs = [np.asarray(a) for a in inputs]
    items = []
    for info, array in zip(program.inputs, inputs):
        one = int(np.prod(info.buffer.logical_shape()))
        batched = batch > 1 and array.ndim >= 1 and array.shape[0] == batch and array.size == batch * one
        items.append(np.split(array, batch) if batched else [array] * batch)
    runs = []
    findings: list[Finding] = []
    with one_blas_thread():
        for item in range(batch):
            interp = Interpreter(program, accumulator=accumulator, poison=poison, kernels=kernels,
                                 reference=reference)
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
