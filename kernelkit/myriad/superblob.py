"""Superblobs (DepthAI's `.superblob`): one blob compiled for 8 SHAVEs and a bsdiff patch for every SHAVE count.

Layout (depthai-core src/openvino/OpenVINO.cpp; luxonis/modelconverter packages/rvc2/exporter.py):

    u64 BE  base blob size
    u64 BE  patch size x 16     (index i = i+1 SHAVEs; 0 = the base as it is)
    base blob                   (8 SHAVEs, CMX slices = SHAVEs, one throughput stream)
    patch(1) ... patch(16)      classic bsdiff ("BSDIFF40", bzip2 blocks; PyPI bsdiff4)

Every count is compiled from the same IR in its own compiler process; the plugin's output is byte-identical for
the same IR and settings, so each patched blob equals a direct compile at that count.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import atomic_write, read_input
from kernelkit.facts.device import MAX_SHAVES
from kernelkit.myriad import blob as blobfmt

BASE_SHAVES = 8                      # what DepthAI picks from a superblob unless told otherwise
PATCH_COUNT = MAX_SHAVES             # depthai's SuperBlob::NUMBER_OF_PATCHES
_HEADER = struct.Struct(f">{1 + PATCH_COUNT}Q")
HEADER_BYTES = _HEADER.size          # 136
PATCH_MAGIC = b"BSDIFF40"
JOBS_VARIABLE = "KERNELKIT_SUPERBLOB_JOBS"
# Peak memory of one worker: a compiler process took 27 MB for a 1 KB model and 165 MB for 47 MB of weights
# (the 2021.4 shim, measured); bsdiff's suffix arrays take some 17 bytes per blob byte, and the blob is about
# half the weights (FP16). So a generous fixed part plus ten times the model's files.
_COMPILE_BASE_BYTES = 256 * limits.MiB
_COMPILE_BYTES_PER_MODEL_BYTE = 10
_PARALLEL_DIFF_BYTES = 1 * limits.MiB    # smaller blobs diff in well under a second: no processes for them


@dataclass(frozen=True)
class Superblob:
    base: bytes
    patches: tuple[bytes, ...]       # PATCH_COUNT entries; b"" = the base as it is

    def blob(self, shaves: int) -> bytes:
        """The blob for `shaves` SHAVEs: the base with that count's patch applied."""
        if not 1 <= shaves <= PATCH_COUNT:
            raise KernelkitError(f"a superblob holds blobs for 1 to {PATCH_COUNT} SHAVEs, not {shaves}",
                                 where="--shaves")
        patch = self.patches[shaves - 1]
        if not patch:
            return self.base
        import bsdiff4

        try:
            blob = bsdiff4.patch(self.base, patch)
        except Exception as exc:  # noqa: BLE001 - bsdiff4 raises ValueError and bz2's errors
            raise KernelkitError(f"the patch for {shaves} SHAVEs does not apply: {exc}",
                                 hint="compile the superblob again with kernelkit compile") from None
        try:
            blobfmt.read_header(blob)
        except KernelkitError as exc:
            raise KernelkitError(f"the patch for {shaves} SHAVEs makes a damaged blob: {exc.message}",
                                 hint="compile the superblob again with kernelkit compile") from None
        return blob

    def to_bytes(self) -> bytes:
        return _HEADER.pack(len(self.base), *(len(p) for p in self.patches)) + self.base + b"".join(self.patches)


def _diff(base: bytes, new: bytes) -> bytes:
    import bsdiff4

    return b"" if new == base else bsdiff4.diff(base, new)


def pack(blobs: dict[int, bytes], *, jobs: int = 1) -> Superblob:
    """A superblob from the blobs compiled for every count 1..16: the 8-SHAVE one as the base, the rest as
    patches against it (none where a count's blob equals the base), diffed in up to `jobs` processes."""
    missing = [n for n in range(1, PATCH_COUNT + 1) if n not in blobs]
    if missing:
        raise KernelkitError(f"no blob for {', '.join(map(str, missing))} SHAVEs: a superblob holds every count "
                             f"1 to {PATCH_COUNT}")
    for n, data in blobs.items():
        blobfmt.read_header(data)
    base = blobs[BASE_SHAVES]
    counts = range(1, PATCH_COUNT + 1)
    if jobs > 1 and len(base) >= _PARALLEL_DIFF_BYTES:
        # bsdiff holds the GIL and takes some 20 s for a 23 MB blob: worth a process each.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            patches = list(pool.map(_diff, [base] * PATCH_COUNT, [blobs[n] for n in counts]))
    else:
        patches = [_diff(base, blobs[n]) for n in counts]
    return Superblob(base, tuple(patches))


def parse(data: bytes, *, path=None) -> Superblob:
    """Read and check a superblob the way DepthAI does, plus: the base is a MYRIAD blob, every patch is bsdiff."""
    def refuse(problem: str) -> KernelkitError:
        return KernelkitError(f"not a superblob: {problem}", path=path,
                              hint="pass a .superblob written by `kernelkit compile -o NAME.superblob` "
                                   "or Luxonis' ModelConverter")

    if len(data) < HEADER_BYTES:
        raise refuse(f"{len(data)} bytes, shorter than its {HEADER_BYTES}-byte header")
    base_size, *patch_sizes = _HEADER.unpack_from(data)
    declared = HEADER_BYTES + base_size + sum(patch_sizes)
    if declared != len(data):
        raise refuse(f"the header declares {declared:,} bytes, the file has {len(data):,}")
    base = data[HEADER_BYTES:HEADER_BYTES + base_size]
    try:
        blobfmt.read_header(base)
    except KernelkitError as exc:
        raise refuse(f"its base is {exc.message}") from None
    patches, offset = [], HEADER_BYTES + base_size
    for n, size in enumerate(patch_sizes, 1):
        patch = data[offset:offset + size]
        if size and not patch.startswith(PATCH_MAGIC):
            raise refuse(f"the patch for {n} SHAVEs does not start with {PATCH_MAGIC.decode()}")
        if size:
            problem = _patch_header_problem(patch)
            if problem:
                raise refuse(f"the patch for {n} SHAVEs {problem}")
        patches.append(patch)
        offset += size
    return Superblob(base, tuple(patches))


def _offtin(data: bytes) -> int:
    """bsdiff's 8-byte integer: little-endian magnitude, the top bit of the last byte the sign."""
    value = int.from_bytes(data, "little") & ~(1 << 63)
    return -value if data[7] & 0x80 else value


def _patch_header_problem(patch: bytes) -> str | None:
    """What is wrong with a BSDIFF40 header (control and diff block lengths, the new file's size), else None:
    the patch is applied only when the blob it makes is no bigger than the limit on blobs."""
    if len(patch) < 32:
        return f"is {len(patch)} bytes, shorter than bsdiff's 32-byte header"
    control, diff, size = (_offtin(patch[i:i + 8]) for i in (8, 16, 24))
    if control < 0 or diff < 0 or 32 + control + diff > len(patch):
        return "declares blocks that do not fit in it"
    limit = limits.WEIGHTS_BYTES.value()
    if not 0 < size <= limit:
        return f"declares a {size:,}-byte blob (the limit is {limit:,}, {limits.WEIGHTS_BYTES.variable})"
    return None


def read(path: str | Path) -> Superblob:
    path = Path(path)
    return parse(read_input(path, limits.WEIGHTS_BYTES.value(), what="superblob", limit=limits.WEIGHTS_BYTES),
                 path=path)


# ----------------------------------------------------------------------------------------------- compile

@dataclass
class SuperblobResult:
    path: Path
    size: int
    superblob: Superblob
    header: blobfmt.BlobHeader       # the base's
    seconds: float                   # wall time of all compiles and diffs
    jobs: int                        # compiler processes run at once
    warnings: list[str]

    @property
    def blob_path(self) -> Path:     # as CompileResult names its output
        return self.path


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def model_bytes(model: Path) -> int:
    """The size of a model's files (an IR's .xml and .bin), the measure of one compile's memory."""
    total = 0
    for part in (model, model.with_suffix(".bin")) if model.suffix.lower() == ".xml" else (model,):
        try:
            total += part.stat().st_size
        except OSError:
            pass
    return total


def default_jobs(model: Path) -> int:
    """Compiler processes to run at once: KERNELKIT_SUPERBLOB_JOBS, else as many as there are cores and as half
    of the available memory holds (one at least, 16 at most)."""
    text = os.environ.get(JOBS_VARIABLE, "").strip()
    if text:
        try:
            jobs = int(text)
        except ValueError:
            jobs = 0
        if jobs < 1:
            raise KernelkitError(f"{JOBS_VARIABLE}={text!r} is not a positive whole number", where=JOBS_VARIABLE,
                                 hint=f"unset it to let kernelkit choose, e.g. {JOBS_VARIABLE}=2")
        return min(jobs, PATCH_COUNT)
    jobs = os.cpu_count() or 1
    memory = _available_memory()
    if memory:
        per_compile = _COMPILE_BASE_BYTES + _COMPILE_BYTES_PER_MODEL_BYTE * model_bytes(model)
        jobs = min(jobs, (memory // 2) // per_compile)
    return max(1, min(jobs, PATCH_COUNT))


def compile_superblob(model: str | Path, out: str | Path, *, jobs: int | None = None, **options) -> SuperblobResult:
    """Compile `model` for every SHAVE count 1..16 (CMX slices = SHAVEs, one throughput stream) in up to `jobs`
    compiler processes at once and write the superblob `out` atomically. `options` as compile_model's (u8_input,
    fp16_output, blob_version, custom_layers, config, timeout); shaves and cmx_slices are the superblob's to choose.

    A count the plugin refuses is a CompileFailed naming that count; nothing is written then."""
    from kernelkit.myriad.compile import CMX_KEY, SHAVES_KEY, CompileFailed, compile_model

    model, out = Path(model), Path(out)
    for key in ("shaves", "cmx_slices"):
        if options.get(key) is not None:
            raise KernelkitError("a superblob holds every SHAVE count 1 to 16, each with as many CMX slices",
                                 where="--" + key.replace("_", "-"),
                                 hint="drop the option, or compile a plain .blob for one count")
        options.pop(key, None)
    config = {k: v for k, v in (options.pop("config", None) or {}).items()
              if k not in (SHAVES_KEY, CMX_KEY, "MYRIAD_THROUGHPUT_STREAMS")}
    if jobs is not None and not 1 <= jobs:
        raise KernelkitError(f"{jobs} compiler processes: give at least 1", where="--jobs")
    jobs = min(jobs or default_jobs(model), PATCH_COUNT)
    # The base first, so a model that does not compile at all fails at once.
    counts = [BASE_SHAVES] + [n for n in range(1, PATCH_COUNT + 1) if n != BASE_SHAVES]
    blobs: dict[int, bytes] = {}
    failures: dict[int, Exception] = {}
    warnings: list[str] = []
    stop = threading.Event()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kernelkit-superblob-") as tmp:
        def one(n: int) -> None:
            if stop.is_set():
                return
            try:
                result = compile_model(model, Path(tmp) / f"{n}.blob", shaves=n, cmx_slices=n, config=config,
                                       **options)
            except Exception as exc:  # noqa: BLE001 - reported below, naming the count
                failures[n] = exc
                stop.set()
                return
            blobs[n] = result.blob_path.read_bytes()
            warnings.extend(w for w in result.warnings if w not in warnings)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(one, n) for n in counts]:
                future.result()
    if failures:
        n = BASE_SHAVES if BASE_SHAVES in failures else min(failures)
        exc = failures[n]
        if isinstance(exc, CompileFailed):
            failed = CompileFailed(f"the compile for {n} SHAVEs ({n} CMX slices) failed: {exc.message}",
                                   layer_name=exc.layer_name, layer_type=exc.layer_type, path=exc.path,
                                   plugin_text=exc.plugin_text)
            if n != BASE_SHAVES:
                failed.hint = (f"a superblob needs every SHAVE count 1 to {PATCH_COUNT} to compile; for one count, "
                               f"compile a plain .blob (kernelkit compile MODEL -o NAME.blob --shaves N)")
            raise failed from None
        if isinstance(exc, KernelkitError):
            raise exc
        raise KernelkitError(f"the compile for {n} SHAVEs failed: {exc}") from exc
    superblob = pack(blobs, jobs=jobs)
    seconds = time.monotonic() - start
    data = superblob.to_bytes()
    atomic_write(out, data)
    return SuperblobResult(out, len(data), superblob, blobfmt.read_header(superblob.base), seconds, jobs, warnings)
