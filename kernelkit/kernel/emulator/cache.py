"""What the emulator keeps between calls: parsed binding and source files (while their size and modification time
stay the same), transformed programs, kernel signatures, and whole launch plans keyed by the call's shapes.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.kernel.bindings import clsource
from kernelkit.kernel.bindings.model import CustomLayer, Kernel, source_file
from kernelkit.kernel.builder.lint import local_memory_estimate
from kernelkit.kernel.emulator import source as shave_source
from kernelkit.kernel.emulator.worker import Job, program_key

# Parsed files are kept while their size and modification time stay the same: repeated calls skip the work.
_FILE_CACHE: dict[tuple, object] = {}


def stat_key(path) -> tuple:
    # the file's identity without resolving the path (which costs a system call per component)
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def cached_file(kind: str, path: Path, read):
    try:
        key = (kind,) + stat_key(path)
    except OSError:
        return read(path)          # let the reader report the problem
    if key not in _FILE_CACHE:
        if len(_FILE_CACHE) > 512:
            _FILE_CACHE.clear()
        _FILE_CACHE[key] = read(path)
    return _FILE_CACHE[key]


def read_sources(ctx, kernel: Kernel) -> tuple[tuple[str, str], ...]:
    sources = []
    for name in kernel.sources:
        cl_path = source_file(ctx.layer, name, line=kernel.line, suffix=".cl", missing_ok=True)
        if cl_path is None:
            cl_path = (ctx.layer.base_dir / name).with_suffix(".cl")    # a name source_file accepted: shown only
            raise ctx.error(f"<Source filename=\"{name}\">: the OpenCL source {cl_path.name} is not beside it",
                            kernel, hint=f"the emulator compiles {cl_path} (the .cl that {name} is built from)")
        sources.append((str(cl_path), cached_file("cl", cl_path, clsource.read_source)))
    return tuple(sources)


@lru_cache(maxsize=256)
def transformed_program(sources: tuple[tuple[str, str], ...], entry: str, options: str) -> tuple[str, str]:
    program = shave_source.transform(list(sources), entry, path=sources[0][0])
    return program, program_key(program, options)


def real_half_program(ctx, kernel, sources) -> tuple[bytes, str]:
    """arithmetic="fp16": the program as SPIR bitcode from clang-15 (cached on disk by content)."""
    text = shave_source.real_half_source(list(sources), kernel.entry, path=sources[0][0])
    binary, log = shave_source.compile_real_half(text)
    if binary is None:
        raise KernelkitError(f"the kernel source does not build with fp16 arithmetic:\n{log.strip()[-3000:]}",
                             path=sources[0][0], where=ctx.where(kernel),
                             hint="fix the source; line numbers refer to your .cl file")
    return binary, program_key(text, shave_source.REAL_HALF_BUILD_OPTIONS)


@lru_cache(maxsize=256)
def local_arrays(source: str, entry: str) -> tuple[tuple[str, int], ...]:
    names = [entry, f"__dma_preload_{entry}", f"__dma_postwrite_{entry}"]
    return tuple(local_memory_estimate(shave_source.kernel_text(source, names)))


_SIGNATURES: dict[str, list] = {}


def signatures(text: str, path: str):
    found = _SIGNATURES.get(text)
    if found is None:
        found = clsource.parse_kernels(text, path=path)
        if len(_SIGNATURES) > 256:
            _SIGNATURES.clear()
        _SIGNATURES[text] = found
    return found


@dataclass
class CachedPlan:
    layer: CustomLayer
    alternative: int
    job: Job                 # laid out, with a key: the worker keeps it and a call sends only the key
    layout: object           # run._Layout: where everything sits in the arena
    buffers: dict            # key -> Buffer with data=None; `recipe` makes the contents per call
    stages: list
    findings: list           # what the plan found (not the run)
    sources: list            # (path, stat key) of every .cl read: an edited source invalidates the plan

    def still_valid(self) -> bool:
        try:
            return all(stat_key(path) == key for path, key in self.sources)
        except OSError:
            return False


PLANS: dict[tuple, CachedPlan] = {}
_JOB_NUMBERS = itertools.count()


def plan_key(bindings, layer_type, legacy, arrays, shapes, precision, blobs) -> tuple | None:
    if not isinstance(bindings, (str, Path)):
        return None              # loaded layers may be edited in place: no caching
    try:
        where = stat_key(bindings)
    except OSError:
        return None
    # dtype objects compare by kind, size and byte order: the same key as their .str, without building it
    return (where, layer_type, tuple(sorted(legacy.items())), tuple((a.shape, a.dtype) for a in arrays),
            tuple(shapes), precision,
            tuple(sorted((k, np.shape(v), np.asarray(v).dtype) for k, v in blobs.items())) if blobs else ())


def remember_plan(key, ctx, job, buffers, stages, layout) -> None:
    sources = []
    for kernel in ctx.layer.kernels:
        for name in kernel.sources:
            path = source_file(ctx.layer, name, line=kernel.line, suffix=".cl")
            sources.append((str(path), stat_key(path)))
    if len(PLANS) > 128:
        PLANS.clear()
    job.key = f"{os.getpid()}-{next(_JOB_NUMBERS)}"
    PLANS[key] = CachedPlan(ctx.layer, ctx.alternative, job, layout,
                              {k: replace(b, data=None) for k, b in buffers.items()}, stages,
                              list(ctx.findings), sources)


