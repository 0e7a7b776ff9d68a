"""One kernel launch on raw device buffers, on PoCL: what a Custom stage of a compiled blob runs.

emulate() plans a whole layer from its binding. In a blob the real plugin has already planned it (work sizes, the
32-bit words of the scalars, which buffer each argument gets), so here a kernel's `.cl` runs once on the stage's
own bytes: buffers go in as the device holds them and come back the same way (half as fp16 bits; on PoCL half is
float32, as in emulate() with arithmetic "fp32"). Each buffer lies between guard zones; a write outside it, and
elements of a layer output the kernel never writes, are reported (those keep the bytes they had: on the device
the memory keeps whatever was there).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.opencl import SCALAR_TYPES
from kernelkit.kernel.emulator import cache, source as shave_source
from kernelkit.kernel.emulator.worker import (ALIGN, GUARD_BYTE, POISON_BITS, Job, Launch, Region, WorkerCrashed,
                                              WorkerTimeout, client)

GUARD_BYTES = 16 << 10


@dataclass
class LaunchArg:
    """One kernel argument as the stage passes it. kind "buffer": `value` is the device bytes (np.uint8);
    "int" / "float": `value` is the 32-bit word the plugin wrote (the float's bits for "float");
    "local": `value` is the __local bytes."""

    name: str
    kind: str
    value: object
    writes: bool = False            # a buffer the stage writes (its bytes come back)
    layer_output: bool = False      # a layer output: elements the kernel never writes are reported


@dataclass
class LaunchResult:
    buffers: dict[int, np.ndarray]                  # argument index -> device bytes after the run (written ones)
    values: dict[int, np.ndarray] = field(default_factory=dict)   # the same as the kernel left them (half: float32)
    problems: list[str] = field(default_factory=list)


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _device_size(pointee: str) -> int:
    known = SCALAR_TYPES.get(pointee)
    if known is None or not known.fixed or pointee == "double":
        raise KernelkitError(f"pointer to '{pointee}' is not a tensor type the emulator knows")
    return known.size


def _emulator_dtype(pointee: str) -> np.dtype:
    return np.dtype(np.float32) if pointee == "half" else np.dtype(SCALAR_TYPES[pointee].numpy)


def _to_emulator(raw: np.ndarray, pointee: str) -> np.ndarray:
    if pointee == "half":
        return raw.view("<f2").astype(np.float32)
    return raw.view(_emulator_dtype(pointee))


def _to_device(values: np.ndarray, pointee: str) -> np.ndarray:
    if pointee == "half":
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype("<f2").view(np.uint8)
    return values.view(np.uint8)


def _poison(values: np.ndarray) -> None:
    if values.dtype.itemsize == 4:
        values.view(np.uint32).fill(POISON_BITS)
    elif values.dtype.itemsize == 2:
        values.view(np.uint16).fill(0x7DA5)
    else:
        values.view(np.uint8).fill(0xA5)


def _poisoned(values: np.ndarray) -> np.ndarray:
    if values.dtype.itemsize == 4:
        return values.view(np.uint32) == POISON_BITS
    if values.dtype.itemsize == 2:
        return values.view(np.uint16) == 0x7DA5
    return values.view(np.uint8) == 0xA5


def _scalar(word: int, ctype: str, name: str, problems: list[str]):
    """The plugin's 32-bit word as the kernel's C type reads it."""
    bits = np.uint32(word & 0xFFFFFFFF)
    if ctype in ("float", "half"):
        if ctype == "half":        # as emulate(): the full float is passed (the device reads 2 of its 4 bytes)
            problems.append(f"argument '{name}' is a 'half' scalar: the device reads 2 of the 4 bytes the plugin "
                            "writes; the emulator passes the full float")
        return bits.view(np.float32)
    if ctype == "int":
        return bits.view(np.int32)
    if ctype == "uint":
        return bits
    raise KernelkitError(f"scalar argument '{name}' of type '{ctype}': the plugin passes only 32-bit int or float "
                         "scalars")


def float_word(value: float) -> int:
    """The 32-bit word of a float scalar."""
    return struct.unpack("<I", struct.pack("<f", value))[0]


def run_kernel(sources: Sequence[tuple[str, str]], entry: str, args: Sequence[LaunchArg],
               global_size: Sequence[int], local_size: Sequence[int], *, timeout: float = 60.0) -> LaunchResult:
    """Run kernel `entry` of `sources` ((path, text) pairs, concatenated as the plugin concatenates a kernel's
    Sources) once with `args` in the kernel's declaration order, `global_size` work items (a multiple of
    `local_size` in every dimension, at most 3 dimensions)."""
    sources = tuple((str(path), text) for path, text in sources)
    where = Path(sources[0][0]).name
    signature = next((s for s in cache.signatures("\n".join(t for _, t in sources), sources[0][0])
                      if s.name == entry), None)
    if signature is None:
        raise KernelkitError(f"no kernel '{entry}' in {', '.join(Path(p).name for p, _ in sources)}",
                             path=sources[0][0])
    if len(signature.args) != len(args):
        raise KernelkitError(f"'{entry}' declares {len(signature.args)} argument(s) "
                             f"({', '.join(a.name for a in signature.args)}) and the stage passes {len(args)}",
                             path=sources[0][0], hint="run the .cl the blob's kernel was built from")
    program, key = cache.transformed_program(sources, entry, shave_source.build_options("fp16"))
    job = Job(programs={key: program}, program_options={key: shave_source.build_options("fp16")})
    problems: list[str] = []
    launch_args: list[tuple] = []
    placed: list[tuple] = []            # (arg index, pointee, emulator values, region, device bytes)
    offset = 0
    for index, (decl, arg) in enumerate(zip(signature.args, args)):
        if arg.kind in ("int", "float"):
            if decl.pointer:
                raise KernelkitError(f"the stage passes a scalar to the pointer argument '{decl.name}'", path=where)
            launch_args.append(("scalar", _scalar(int(arg.value), decl.base_type, decl.name, problems)))
            continue
        if not decl.pointer:
            raise KernelkitError(f"the stage passes a {arg.kind} to the non-pointer argument "
                                 f"'{decl.base_type} {decl.name}'", path=where)
        pointee = decl.scalar_type
        size = _device_size(pointee)
        if arg.kind == "local":
            launch_args.append(("local", max(int(arg.value), 1) * (2 if pointee == "half" else 1)))
            continue
        raw = np.ascontiguousarray(arg.value, dtype=np.uint8).reshape(-1)
        if raw.size % size:
            raise KernelkitError(f"argument '{decl.name}': {raw.size} bytes do not divide into '{pointee}' elements",
                                 path=where)
        values = _to_emulator(raw, pointee)
        start = offset + GUARD_BYTES
        region = Region(start, values.nbytes)
        offset = _align(start + max(values.nbytes, 1)) + GUARD_BYTES
        placed.append((index, pointee, values, region, raw))
        launch_args.append(("buf", len(job.buffers)))
        job.buffers.append(region)
    job.launches.append(Launch(program=key, kernel=entry, global_size=tuple(global_size),
                               local_size=tuple(local_size), args=launch_args))

    worker = client()
    with worker.session() as session:
        try:
            arena = session.arena(offset)
            session.prepare(job, arena, timeout)
            arena.view(np.uint8, 0, offset).fill(GUARD_BYTE)
            arena.guards_intact = None
            for index, pointee, values, region, _ in placed:
                view = arena.view(values.dtype, region.offset, values.size)
                if args[index].layer_output:
                    _poison(view)
                else:
                    view[...] = values
            reply = session.run(job, arena, timeout)
        except WorkerTimeout:
            raise KernelkitError(f"kernel '{entry}' did not finish within {timeout:g} s; the emulator stopped it",
                                 path=sources[0][0],
                                 hint="look for a loop that never ends or a barrier not every work item reaches") \
                from None
        except WorkerCrashed as exc:
            raise KernelkitError(f"kernel '{entry}' crashed the emulator ({exc}); a write far outside a buffer "
                                 f"does this. Worker log: {exc.log[-600:] or '(empty)'}", path=sources[0][0]) \
                from None
        if reply[0] == "build_error":
            raise KernelkitError(f"the kernel source does not build on the emulator:\n{reply[2].strip()}",
                                 path=sources[0][0], hint="fix the source; line numbers refer to your .cl file")
        if reply[0] != "ok":
            raise KernelkitError(f"the emulator could not run kernel '{entry}': {reply[1]}", path=sources[0][0])
        out: dict[int, np.ndarray] = {}
        kept: dict[int, np.ndarray] = {}
        for index, pointee, values, region, raw in placed:
            name = signature.args[index].name
            before = arena.view(np.uint8, region.offset - GUARD_BYTES, GUARD_BYTES)
            tail_start = region.offset + region.nbytes
            after = arena.view(np.uint8, tail_start, _align(region.offset + max(region.nbytes, 1)) - tail_start
                               + GUARD_BYTES)
            if (before != GUARD_BYTE).any() or (after != GUARD_BYTE).any():
                problems.append(f"out-of-bounds write: argument '{name}' was written outside its {values.size} "
                                "elements")
            if not args[index].writes:
                continue
            now = arena.view(values.dtype, region.offset, values.size).copy()
            device = _to_device(now, pointee).copy()
            if args[index].layer_output:
                never = _poisoned(now)
                if never.any():
                    problems.append(f"{int(never.sum())} of {values.size} elements of output '{name}' were never "
                                    "written (the device leaves whatever was in memory there)")
                    keep = np.repeat(never, _device_size(pointee))
                    device[keep] = raw[keep]
                    now[never] = values[never]
            out[index], kept[index] = device, now
    return LaunchResult(out, kept, problems)
