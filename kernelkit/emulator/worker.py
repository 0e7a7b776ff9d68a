"""The OpenCL side of the emulator, in its own process.

The parent (`WorkerClient`) sends a job: programs to build, where each buffer lies in the shared arena,
launches in order, and the boundary conversions around them. The worker owns the PoCL context and caches
built programs, jobs and sub-buffers, so a repeated call sends only a job key and runs one queue submission;
a kernel that never finishes or crashes takes down only this process, which the client kills and restarts.
Protocol: pickled tuples over a multiprocessing Connection on inherited pipes.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from ..errors import KernelkitError, ToolchainUnavailable
from ..paths import cache_dir

GUARD_BYTE = 0xA5                 # every byte of a guard zone
POISON_BITS = 0x7FA5A5A5          # a NaN no arithmetic produces: marks output elements never written
STARTUP_TIMEOUT = 120.0
ALIGN = 4096                      # region offsets: page aligned, above PoCL's 128-byte sub-buffer alignment
FLAG_STRIDE = 128                 # PoCL's sub-buffer alignment: status words the worker writes lie this far apart


@dataclass
class Region:
    offset: int
    nbytes: int


@dataclass
class Finish:
    """After the run: write the fp16 bits of the float32 `buffer` (`count` elements) into `half_out`, count
    the elements still holding the poison into `poison_stats` (two words the parent sets to 0 and 0xFFFFFFFF:
    how many, first index), then poison the buffer again for the next run."""

    buffer: int
    count: int
    half_out: Region
    poison_stats: Region


@dataclass
class Launch:
    program: str                     # key into Job.programs
    kernel: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...]
    args: list[tuple]                # ("buf", index) | ("local", nbytes) | ("scalar", numpy scalar)


@dataclass
class Job:
    """Tensors live in one shared file (the arena) that parent and worker both map: no data in the pipe.

    A job with a `key` is kept by the worker, so a repeated call sends only the key (the plan cache makes the
    same job, with the same regions, for every call of the same shape)."""

    key: str | None = None
    programs: dict[str, str] = field(default_factory=dict)     # key -> source
    program_options: dict[str, str] = field(default_factory=dict)
    buffers: list[Region] = field(default_factory=list)        # what kernels see (guards lie outside)
    poison: list[tuple[int, int]] = field(default_factory=list)     # (buffer, words) to fill with POISON_BITS
    round_inputs: list[tuple[int, int]] = field(default_factory=list)   # (buffer, float count) to round to fp16
    widen_inputs: list[tuple[int, Region, int]] = field(default_factory=list)  # (buffer, fp16 bits, count)
    launches: list[Launch] = field(default_factory=list)
    finish: list[Finish] = field(default_factory=list)
    scan: list[tuple[int, int, Region]] = field(default_factory=list)   # other outputs: (buffer, words, stats)
    guards: list[tuple[int, int, Region]] = field(default_factory=list)  # (start, nbytes, flag) zones to check


def program_key(source: str, options: str) -> str:
    return hashlib.sha256((options + "\0" + source).encode()).hexdigest()[:32]


SUPPORT_CHUNK = 64                # elements per work item in support.cl (CHUNK); guard bytes: 4 times that
SUPPORT_GROUP = 64                # work items per group for the support kernels (PoCL picks badly for odd sizes)


def _support_program() -> tuple[str, str]:
    return (Path(__file__).with_name("support.cl").read_text(encoding="utf-8"), "")


def _items(count: int, per_item: int = SUPPORT_CHUNK) -> int:
    return -(-count // per_item)


# ---------------------------------------------------------------------------------------------------------
# worker process

def _pocl_platform(cl):
    """The newest PoCL platform, chosen by its version string (never by index)."""
    best, best_version = None, ()
    for platform in cl.get_platforms():
        m = re.search(r"PoCL (\d+)\.(\d+)", platform.version)
        if m and tuple(map(int, m.groups())) > best_version:
            best, best_version = platform, tuple(map(int, m.groups()))
    return best, best_version


class _Device:
    def __init__(self):
        import warnings

        import pyopencl as cl

        warnings.filterwarnings("ignore", category=cl.CompilerWarning)
        self.cl = cl
        platform, version = _pocl_platform(cl)
        if platform is None or version < (3, 1):
            raise RuntimeError("no PoCL >= 3.1 OpenCL platform found")
        self.device = platform.get_devices()[0]
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx)
        self.programs: dict[str, object] = {}
        self.arena_path = None
        self.arena_map = None
        self.arena_buffer = None
        self.views: dict[tuple[int, int], object] = {}     # sub-buffers of the mapped arena, by region
        self.jobs: dict[str, Job] = {}
        self.commands: dict[str, list] = {}                 # job key -> prepared launches (this arena)
        self.poisoned: set[tuple[int, int]] = set()         # (offset, words) that kk_to_half left poisoned
        source, options = _support_program()
        support, log = self.program("kk-support", source, options)
        if support is None:
            raise RuntimeError(f"the emulator's support program does not build: {log}")
        self.info = {"platform": platform.version, "device": self.device.name,
                     "max_work_group_size": self.device.max_work_group_size,
                     "base_align": self.device.mem_base_addr_align // 8}

    def program(self, key: str, source: str, options: str):
        prg = self.programs.get(key)
        if prg is None:
            prg = self.cl.Program(self.ctx, source)
            try:
                prg.build(options=options)
            except self.cl.RuntimeError as exc:
                try:
                    log = prg.get_build_info(self.device, self.cl.program_build_info.LOG)
                except Exception:
                    log = str(exc)
                return None, log or str(exc)
            self.programs[key] = prg
        return prg, None

    def _map(self, path: str, size: int):
        if self.arena_path != path:
            import mmap

            self.arena_buffer = None
            self.views, self.commands, self.poisoned = {}, {}, set()
            if self.arena_map is not None:
                self.arena_map.close()
            fd = os.open(path, os.O_RDWR)
            try:
                self.arena_map = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            host = np.frombuffer(self.arena_map, np.uint8)
            flags = self.cl.mem_flags.READ_WRITE | self.cl.mem_flags.USE_HOST_PTR
            self.arena_buffer = self.cl.Buffer(self.ctx, flags, hostbuf=host)
            self.arena_path = path

    def view(self, region: Region, minimum: int = 1):
        key = (region.offset, max(region.nbytes, minimum))
        buffer = self.views.get(key)
        if buffer is None:
            buffer = self.views[key] = self.arena_buffer.get_sub_region(*key)
        return buffer

    def remember(self, job: Job) -> None:
        if job.key is not None:
            if len(self.jobs) > 256:
                self.jobs.clear()
                self.commands.clear()
            self.jobs[job.key] = job
            self.commands.pop(job.key, None)

    def run(self, job: Job, arena: str, arena_size: int):
        """Poison, round the inputs, run the stages, convert and check: one queue submission, one wait."""
        # Outputs the last run converted are still poisoned: since then only the parent has written, and only
        # into this job's inputs, guards and status words, which never overlap this job's outputs. Taken
        # here, before anything can fail, so no later run trusts a state this one may have spoiled.
        poisoned, self.poisoned = self.poisoned, set()
        timings = {}
        t0 = time.perf_counter()
        for key, source in job.programs.items():
            prg, log = self.program(key, source, job.program_options.get(key, ""))
            if prg is None:
                return ("build_error", key, log)
        missing = {launch.program for launch in job.launches} - set(self.programs)
        if missing:
            return ("error", f"program(s) {', '.join(sorted(missing))} were never sent to this worker")
        if arena != self.arena_path:
            poisoned = set()              # a new arena: nothing in it is known
        self._map(arena, arena_size)
        commands = self.commands.get(job.key) if job.key is not None else None
        if commands is None:
            try:
                commands = self._commands(job)
            except self.cl.LogicError as exc:
                return ("error", f"a kernel is not in its built program: {exc}")
            if job.key is not None:
                self.commands[job.key] = commands
        timings["build"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        for kernel, global_size, local_size, fills in commands:
            if fills is None or fills not in poisoned:
                self.cl.enqueue_nd_range_kernel(self.queue, kernel, global_size, local_size)
        self.queue.finish()
        self.poisoned = {(job.buffers[item.buffer].offset, item.count) for item in job.finish}
        timings["device"] = time.perf_counter() - t1
        return ("ok", timings)

    def _commands(self, job: Job) -> list[tuple]:
        """The job's launches with their arguments set, in queue order. Each gets its own kernel object, so
        a repeated job (same key, same arena) re-enqueues them without setting anything again."""
        cl = self.cl
        views = [self.view(region) for region in job.buffers]
        poison = np.uint32(POISON_BITS)
        commands = []

        def support(name: str, items: int, *args, fills=None) -> None:
            kernel = cl.Kernel(self.programs["kk-support"], name)
            kernel.set_args(*args)
            grid = -(-items // SUPPORT_GROUP) * SUPPORT_GROUP     # whole groups; the extra items do nothing
            commands.append((kernel, (grid,), (SUPPORT_GROUP,), fills))

        for index, count in job.poison:
            support("kk_poison", _items(count), views[index], np.uint32(count), poison,
                    fills=(job.buffers[index].offset, count))
        for index, count in job.round_inputs:
            support("kk_round_inplace", _items(count), views[index], np.uint32(count))
        for index, bits, count in job.widen_inputs:
            support("kk_widen_half", _items(count), self.view(bits, 2), views[index], np.uint32(count))
        for launch in job.launches:
            kernel = cl.Kernel(self.programs[launch.program], launch.kernel)
            for i, (kind, value) in enumerate(launch.args):
                if kind == "buf":
                    kernel.set_arg(i, views[value])
                elif kind == "local":
                    kernel.set_arg(i, cl.LocalMemory(max(int(value), 1)))
                else:
                    kernel.set_arg(i, value)
            commands.append((kernel, launch.global_size, launch.local_size, None))
        for item in job.finish:
            support("kk_to_half", _items(item.count), views[item.buffer], self.view(item.half_out, 2),
                    np.uint32(item.count), poison, self.view(item.poison_stats))
        for index, count, stats in job.scan:
            support("kk_find_poison", _items(count), views[index], np.uint32(count), poison, self.view(stats))
        for start, nbytes, flag in job.guards:
            support("kk_check_guard", _items(nbytes, 4 * SUPPORT_CHUNK), self.arena_buffer, np.uint64(start),
                    np.uint32(nbytes), np.uint8(GUARD_BYTE), self.view(flag))
        return commands


def main(read_fd: int, write_fd: int) -> None:
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir("pocl")))
    conn_in, conn_out = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    try:
        device = _Device()
    except Exception as exc:  # report why, then stop
        conn_out.send(("unavailable", f"{type(exc).__name__}: {exc}"))
        return
    conn_out.send(("ready", device.info))
    while True:
        try:
            message = conn_in.recv()
        except EOFError:
            return
        if message is None:
            return
        kind, job, arena, arena_size = message
        try:
            if kind == "job":
                device.remember(job)
            else:                             # "run": a job sent before, by key
                job = device.jobs.get(job)
            if job is None:
                device.poisoned.clear()       # the parent has filled the arena for a job we do not have
                reply = ("unknown_job",)
            else:
                reply = device.run(job, arena, arena_size)
        except Exception as exc:  # an OpenCL failure of one job must not end the worker
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn_out.send(reply)


# ---------------------------------------------------------------------------------------------------------
# parent side

class WorkerTimeout(Exception):
    pass


class WorkerCrashed(Exception):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class Arena:
    """A file in /dev/shm that parent and worker both map; tensors go through it without copies in the pipe.

    The file is unlinked as soon as the worker has mapped it, so nothing is left behind on exit."""

    MIN_SIZE = 16 << 20

    def __init__(self, size: int):
        import mmap
        import tempfile

        shm = "/dev/shm"
        folders = ([shm] if os.path.isdir(shm) and os.access(shm, os.W_OK) else []) + [None]
        for folder in folders:
            fd, self.path = tempfile.mkstemp(prefix=f"kernelkit-emulator-{os.getpid()}-", dir=folder)
            try:
                # reserve the space now: a tmpfs that fills up later would kill us with SIGBUS
                os.posix_fallocate(fd, 0, size)
                self.map = mmap.mmap(fd, size)
                break
            except OSError as exc:
                os.unlink(self.path)
                if folder is None:
                    raise KernelkitError(f"cannot reserve {size} bytes for the emulator's tensors: {exc.strerror}",
                                         hint="free memory or disk space, or emulate smaller tensors") from None
            finally:
                os.close(fd)
        self.size = size
        self.linked = True
        self.guards_intact = None   # the parent's record of which guard zones hold the pattern (core._fill)

    def view(self, dtype, offset: int, count: int) -> np.ndarray:
        return np.frombuffer(self.map, dtype, count, offset)

    def unlink(self) -> None:
        if self.linked:
            self.linked = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self.unlink()
        try:
            self.map.close()
        except BufferError:      # a caller still holds a view; the mapping goes when that view does
            pass


class WorkerClient:
    """A persistent worker process; restarted after a timeout or a crash.

    Use `with client.session() as s:` to hold it (and its arena) for one emulation: `s.arena(size)`,
    write tensors into it, `s.run(job, arena, timeout)`, read the results, leave the block."""

    def __init__(self):
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._arena: Arena | None = None
        self._built: set[str] = set()    # programs the running worker has; their text is not sent again
        self._jobs: set[str] = set()     # job keys the running worker keeps; a call sends only the key
        self._owner = os.getpid()          # a forked child must not talk to its parent's worker
        self.info: dict = {}
        self._log_path = cache_dir("emulator") / f"worker-{os.getpid()}.log"

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        env = dict(os.environ)
        env.setdefault("POCL_CACHE_DIR", str(cache_dir("pocl")))
        env["PYOPENCL_COMPILER_OUTPUT"] = "0"
        package_parent = str(Path(__file__).resolve().parents[2])   # so the worker imports this same kernelkit
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        code = f"from kernelkit.emulator.worker import main; main({child_read}, {child_write})"
        log = open(self._log_path, "wb")
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(child_read, child_write),
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                          close_fds=True)
        finally:
            log.close()
            os.close(child_read)
            os.close(child_write)
        self._send = Connection(parent_write, readable=False)
        self._recv = Connection(parent_read, writable=False)
        if not self._recv.poll(STARTUP_TIMEOUT):
            self._kill()
            raise ToolchainUnavailable("the OpenCL worker did not start in time", hint=f"see {self._log_path}")
        try:
            status, detail = self._recv.recv()
        except EOFError:
            log_tail = self._log_tail()
            self._kill()
            raise ToolchainUnavailable(f"the OpenCL worker failed to start: {log_tail}") from None
        if status != "ready":
            self._kill()
            raise ToolchainUnavailable(f"no usable OpenCL device for the emulator: {detail}",
                                       hint="install PoCL 3.1+: apt-get install pocl-opencl-icd")
        self.info = detail

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs (None before the first job or after a kill)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-limit:].strip()
        except OSError:
            return ""

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._proc = self._send = self._recv = None
        self._built = set()
        self._jobs = set()
        if self._arena is not None:      # a new worker maps a new arena
            self._arena.close()
            self._arena = None

    def close(self) -> None:
        if self._owner != os.getpid():
            return                       # a forked child: the worker belongs to the parent
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                try:
                    self._send.send(None)
                    self._proc.wait(timeout=2)
                except Exception:
                    pass
            self._kill()
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    def _ensure(self) -> None:
        if self._owner != os.getpid():
            # forked: forget the parent's worker and arena without touching them, start our own
            self._proc = self._send = self._recv = self._arena = None
            self._built = set()
            self._jobs = set()
            self._owner = os.getpid()
            self._log_path = cache_dir("emulator") / f"worker-{os.getpid()}.log"
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()

    @contextlib.contextmanager
    def session(self):
        with self._lock:
            self._ensure()
            yield self

    def arena(self, size: int) -> Arena:
        if self._arena is None or self._arena.size < size:
            old = self._arena
            self._arena = Arena(max(size, Arena.MIN_SIZE, 2 * old.size if old else 0))
            if old is not None:
                old.close()
        return self._arena

    def run(self, job: Job, arena: Arena, timeout: float):
        with self._lock:
            self._ensure()
            reply = self._exchange(job, arena, timeout, known=job.key is not None and job.key in self._jobs)
            if reply[0] == "unknown_job":        # the worker dropped it from its cache: send it whole
                reply = self._exchange(job, arena, timeout, known=False)
            if reply[0] == "ok":
                self._built.update(job.programs)
                if job.key is not None:
                    self._jobs.add(job.key)
            if arena is self._arena:
                arena.unlink()                   # the worker has it mapped now
            return reply

    def _exchange(self, job: Job, arena: Arena, timeout: float, known: bool):
        if known:
            message = ("run", job.key, arena.path, arena.size)
        else:
            unbuilt = {k: v for k, v in job.programs.items() if k not in self._built}
            message = ("job", replace(job, programs=unbuilt,
                                      program_options={k: job.program_options.get(k, "") for k in unbuilt}),
                       arena.path, arena.size)
        try:
            self._send.send(message)
        except (BrokenPipeError, OSError):
            log = self._log_tail()
            self._kill()
            raise WorkerCrashed("the OpenCL worker died before taking the job", log) from None
        if not self._recv.poll(timeout):
            self._kill()
            raise WorkerTimeout()
        try:
            return self._recv.recv()
        except (EOFError, OSError):
            code = self._proc.wait() if self._proc else None
            log = self._log_tail()
            self._kill()
            how = f"exit status {code}"
            if code is not None and code < 0:
                with contextlib.suppress(ValueError):
                    how = f"killed by {signal.Signals(-code).name}"
            raise WorkerCrashed(f"the OpenCL worker died while running the kernels ({how})", log) from None


_client: WorkerClient | None = None
_client_lock = threading.Lock()


def client() -> WorkerClient:
    global _client
    with _client_lock:
        if _client is None:
            _client = WorkerClient()
            atexit.register(_client.close)
        return _client


def shutdown() -> None:
    """Stop the worker (the next emulation starts a new one)."""
    if _client is not None:
        _client.close()
