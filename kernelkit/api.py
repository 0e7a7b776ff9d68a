"""The library API: the user's verbs, each one call with an in-memory result. The CLI is these calls plus
argument parsing and printing; a notebook imports `kernelkit` and calls them (docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence


def inspect(model, target=None, *, input_shapes: Mapping | None = None, input_values: Mapping | None = None,
            outputs: Sequence[str] | None = None, oracle: bool = False) -> dict:
    """Every MYRIAD blocker of the model file `model` (.xml or .onnx) for `target` (default: the kit's default
    release), as the `kernelkit.inspect/1` report; `oracle=True` adds the real plugin's verdict."""
    from kernelkit.doctor.inspection import inspect_model
    from kernelkit.facts.target import get_target

    return inspect_model(model, get_target(target), input_shapes=dict(input_shapes or {}),
                         input_values=dict(input_values or {}), outputs=list(outputs or []), oracle=oracle)


def patch(model, outdir=None, target=None, *, input_shapes: Mapping | None = None,
          input_values: Mapping | None = None, outputs: Sequence[str] | None = None, preprocessing=None,
          prefer: str = "native", shaves: int | None = None, force: bool = False, compile: bool = False,  # noqa: A002
          head: str | None = None):
    """Fix the blockers of `model` for `target`. With `outdir`, `model` is a model file and the patch folder is
    written (model.xml/.bin, custom layers, compile.conf, patch-report.json); with `compile` too, the real
    plugin then compiles it as `kernelkit patch` does (model.blob, report["plugin"], fixes tried on a refusal;
    kernelkit.doctor.confirm) where the toolchain is provisioned. Without `outdir`, the patch is in memory:
    `model` is a file or a kernelkit.ir.model.IRModel (edited in place), and the result's `.model` is the
    patched IR (call `.close()` when done with its kernels). Returns the PatchResult: `.report`, `.changes`,
    `.remaining` (blockers left), `.exit_code`."""
    from kernelkit.facts.device import DEFAULT_SHAVES
    from kernelkit.facts.target import get_target
    from kernelkit.model.patcher import patch_ir, patch_model

    target = get_target(target)
    shapes, values, ends = dict(input_shapes or {}) or None, dict(input_values or {}) or None, list(outputs or [])
    if outdir is not None:
        options = dict(input_shapes=shapes, input_values=values, outputs=ends or None, preprocessing=preprocessing,
                       prefer=prefer, shaves=DEFAULT_SHAVES if shaves is None else shaves)
        if head:
            options["head"] = head          # `--head yolo`: an Ultralytics head rewritten for DepthAI
        from kernelkit.ir.load import reuse_conversions

        with reuse_conversions():
            result = patch_model(model, outdir, target, force=force, **options)
            if compile and result.exit_code == 0:
                from kernelkit.doctor.confirm import confirm

                _, result = confirm(result, model, outdir, target, options)
        return result
    if isinstance(model, (str, Path)):
        from kernelkit.ir.load import load_model

        model = load_model(Path(model), shapes, values, fold=True, outputs=ends or None, head=head)
    return patch_ir(model, target, preprocessing=preprocessing, prefer=prefer)


def verify(outdir, *, inputs=None, expected=None, reference=None, seed: int = 0, atol: float | None = None,
           rtol: float | None = None, blob=None, check_blob: bool = True, onnx_reference: bool = False):
    """Run the patch folder's model (custom layers on the SHAVE emulator) against the original model, a
    `reference` model or `expected` outputs, and the compiled blob (`blob`, else the folder's model.blob; on the
    blob interpreter) against the same; `onnx_reference`: an ONNX reference on onnx's reference evaluator, which
    checks OpenVINO's conversion of it too. Returns the VerifyResult (`.passed`, `.ir_passed`, `.blob`,
    `.exit_code`)."""
    from kernelkit.doctor.verify import verify as run_verify

    return run_verify(outdir, inputs=inputs, expected=expected, reference=reference, seed=seed, atol=atol,
                      rtol=rtol, blob=blob, check_blob=check_blob, onnx_reference=onnx_reference)


def compile(model_or_outdir, output, **options):        # noqa: A001 - the user's verb
    """Compile a model file or patch folder to a real MYRIAD blob at `output` with the 2021.4 plugin (options as
    `kernelkit compile`: shaves, cmx_slices, u8_input, fp16_output, blob_version, custom_layers, timeout;
    superblob=True with jobs for a superblob of every SHAVE count). Returns the CompileResult (`.blob_path`, `.header`, `.size`) or,
    for a superblob, the SuperblobResult (`.path`, `.superblob`, `.header`); raises CompileFailed when the
    plugin refuses."""
    from kernelkit.doctor.workflow import compile_folder

    return compile_folder(model_or_outdir, output, **options)


def archive(source, output, *, name: str | None = None, mean=None, scale=None, reverse_channels=None,
            superblob: bool | None = None, head=None, jobs: int | None = None, fp16_output: bool = False):
    """Pack a patch folder (its superblob, compiled when it has none), a .superblob or a .blob into an NN Archive
    for DepthAI; `superblob=False` packs a folder's .blob; `head` is a kernelkit.delivery.heads.HeadOptions;
    `fp16_output` compiles the superblob with FP16 float outputs (an already compiled one must have them).
    Returns the ArchiveResult."""
    from kernelkit.delivery.archive import build_archive

    return build_archive(source, output, name=name, mean=mean, scale=scale, reverse_channels=reverse_channels,
                         superblob=superblob, head=head, jobs=jobs, fp16_output=fp16_output)


def device_check(source, out_dir=None, *, inputs=None, seed: int = 0):
    """Write a DepthAI v3 script and the inputs .npz it feeds next to an NN Archive, .superblob or .blob (or into
    `out_dir`), for a user with an OAK to run and send back the device's outputs. `inputs`: an .npz path or a dict
    keyed by the blob's input names (default: seeded). Returns the DeviceCheck (`.script`, `.inputs`,
    `.device_out`)."""
    from kernelkit.delivery.device_check import write_device_check

    if isinstance(inputs, (str, Path)):
        from kernelkit.core.npzfile import load_npz

        inputs = load_npz(inputs, what="inputs .npz")
    return write_device_check(source, out_dir, inputs=inputs, seed=seed)


def device_compare(device, reference, *, atol: float | None = None, rtol: float | None = None):
    """The device's outputs .npz (from the blob device-check) against a reference's (`blob run --out`,
    OpenVINO CPU), output by output with kernelkit's comparator. Returns the DeviceComparison (`.passed`,
    `.comparisons`, `.missing`, `.extra`)."""
    from kernelkit.delivery.device_check import compare_device

    return compare_device(device, reference, atol=atol, rtol=rtol)


def emulate(bindings, layer_type: str, inputs, attrs: Mapping | None = None, output_shapes=None, **options):
    """Run the MYRIAD binding the plugin would choose for `layer_type` on numpy `inputs` on the SHAVE emulator.
    Returns the EmulationResult (`.outputs`, `.findings`, `.layer`)."""
    from kernelkit.kernel.emulator.run import emulate as run_emulate

    return run_emulate(bindings, layer_type, list(inputs), dict(attrs or {}), output_shapes, **options)


def build(kernel_dir, out, *, force: bool = False):
    """Render, check (clang-15 host check, SHAVE lint, binding checks) and write a kernel folder's .cl, MYRIAD
    .xml and GPU .gpu.xml into `out` (and .bin when clc is found). Returns the BuildResult."""
    from kernelkit.kernel.builder.build import build_kernel

    return build_kernel(kernel_dir, out, force=force)


def plugin_check(target, *, case=None, jobs: int | None = None, keep=None):
    """The real MYRIAD plugin's verdict on the custom layers of a kernel folder, a patch folder, or a binding file
    (`case`: a kernelkit.doctor.plugin_check.check_model.CheckCase naming the layer), each compared with what the
    emulator launches. Returns the list of Verdicts (`.status`, `.agrees`)."""
    from kernelkit.doctor.plugin_check.dispatch import check_target

    return check_target(target, case=case, jobs=jobs, keep=keep)


__all__ = ["inspect", "patch", "verify", "compile", "archive", "emulate", "build", "plugin_check"]


def blob_run(blob, inputs=None, out=None, *, accumulator: str = "both", poison: int | None = None, seed: int = 0,
             kernels=None, reference=None):
    """Execute a compiled MYRIAD blob on the CPU, stage by stage (`kernelkit blob run`). `inputs`: an .npz path,
    a dict keyed by the blob's input names or in0, in1, ..., a list in blob order, or None (seeded random);
    `out`: an .npz to write the outputs to, keyed by the blob's output names. `accumulator`: fp32, fp16 or both
    (the engine's accumulator is firmware behaviour: both brackets it). `poison`: fill BSS/CMX with random
    finite values first (seed). `kernels`: the bindings and .cl files Custom stages run with on the SHAVE
    emulator (a `kernelkit patch` output folder, a folder of binding files or one binding file). `reference`: the IR the blob was compiled from (a patch folder's model.xml);
    the blob is then run again stage by stage to name the first stage whose output departs from it
    (`.departure`, docs/blob.md "Where a blob departs"). Returns the BlobReport (`.outputs`, `.runs`,
    `.findings`, `.depends`, `.departure`, `.exit_code` 1 when a range finding exists or a stage departs)."""
    from kernelkit.runners.blob.runner import load_program, order_inputs, random_inputs, run_blob, write_outputs

    if isinstance(inputs, (str, Path)):
        from kernelkit.core.npzfile import load_npz

        inputs = load_npz(inputs, what="inputs .npz")
    program = load_program(blob)
    arrays = random_inputs(program, seed) if inputs is None else order_inputs(program, inputs)
    report = run_blob(program, arrays, accumulator=accumulator, poison=poison, seed=seed, kernels=kernels)
    if reference is not None:
        from kernelkit.doctor.departure import departure_from_model

        report.departure = departure_from_model(blob, reference,
                                                {info.name: a for info, a in zip(program.inputs, arrays)})
    if out is not None:
        write_outputs(out, report.outputs)
    return report


def blob_info(blob):
    """Read a compiled MYRIAD blob whole: header, I/O, every stage with its params and buffers, HW ops, memory
    (`kernelkit blob info`). Returns the kernelkit.myriad.blob_reader.BlobModel (`.stages`, `.inputs`,
    `.outputs`, `.memory()`, `.counts()`, `.to_dict()`); when the plugin's internal-graph dump
    (`<blob stem>.graph.dot`) sits beside the blob, `.graph_dump` is its path and `.stage_layers` the IR layers
    of each stage. KernelkitError naming the file if either is damaged or the dump belongs to another compile."""
    from kernelkit.myriad.graph_dump import read_blob_with_layers

    return read_blob_with_layers(blob)


def estimate(blob_or_outdir, *, shaves: int | None = None, threads: int = 2):
    """How fast and how big the blob is on an OAK (RVC2): latency, FPS, a per-stage breakdown (engine, SHAVE,
    DMA, fixed; stages named by their IR layers when the graph dump is beside the blob) and DDR/CMX memory
    against what the device has (`kernelkit estimate`; docs/estimate.md). `blob_or_outdir`: a .blob or a patch
    folder holding model.blob. `shaves`: the SHAVEs the NeuralNetwork node runs it on (default: the blob's);
    `threads`: its inference threads (1 or 2). Returns kernelkit.myriad.estimate.Estimate (`.latency_s`, `.fps`,
    `.stages`, `.memory`, `.top(n)`, `.to_dict()`)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model import patchdir
    from kernelkit.myriad.estimate import estimate_blob

    path = Path(blob_or_outdir)
    if path.is_dir():
        blob = path / patchdir.BLOB_FILE
        if not blob.is_file():
            raise KernelkitError(f"the folder holds no {patchdir.BLOB_FILE}", path=path,
                                 hint=f"compile it first: kernelkit compile {path} -o {blob}")
        path = blob
    return estimate_blob(blob_info(path), shaves=shaves, threads=threads)


__all__ = ["inspect", "patch", "verify", "compile", "archive", "device_check", "device_compare", "emulate", "build",
           "plugin_check", "blob_info", "blob_run", "estimate"]
