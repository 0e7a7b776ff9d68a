"""The OpenCL side of the emulator, in its own process.

The parent (`WorkerClient`) sends a job: programs to build, where each buffer lies in the shared arena,
launches in order, and the boundary conversions around them. The worker owns the PoCL context and caches
built programs, jobs and sub-buffers, so a repeated call sends only a job key and runs one queue submission;
a kernel that never finishes or crashes takes down only this process, which the client kills and restarts.
Protocol: pickled tuples over a multiprocessing Connection on inherited pipes.
"""

from __future__ import annotations

import atexit
import bisect
import collections
import contextlib
import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
from kernelkit.core.paths import cache_dir

GUARD_BYTE = 0xA5                 # every byte of a guard zone
POISON_BITS = 0x7FA5A5A5          # a NaN no arithmetic produces: marks output elements never written
STARTUP_TIMEOUT = 120.0
ALIGN = 4096                      # region offsets: page aligned, above PoCL's 128-byte sub-buffer alignment
FLAG_STRIDE = 128                 # PoCL's sub-buffer alignment: status words the worker writes lie this far apart
WAKE_SPIN = 0.005                 # after a wake hint the worker polls this long instead of sleeping (seconds)


@dataclass
class Region:
    offset: int
    nbytes: int


@dataclass
class Finish:
    """After the run: write the fp16 bits of the float32 `buffer` (`count` elements) into the result pool, at the
    offset the parent put in the arena word `destination` for this call, and count the elements still holding
    the poison into `poison_stats` (two words the parent sets to 0 and 0xFFFFFFFF: how many, first index). After
    the reply the worker poisons the buffer again for the next run."""

    buffer: int
    count: int
    destination: Region
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
    """Tensors live in one shared file (the arena) that parent and worker both map: no data in the pipe. fp16
    outputs go to a second one (the result pool, ResultPool), where the caller's arrays stay.

    A job with a `key` is kept by the worker, so a repeated call sends only the key (the plan cache makes the
    same job, with the same regions, for every call of the same shape)."""

    key: str | None = None
    programs: dict[str, str | bytes] = field(default_factory=dict)    # key -> source, or SPIR bitcode
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


EPILOGUE_TO_HALF, EPILOGUE_FIND_POISON, EPILOGUE_CHECK_GUARD = 0, 1, 2     # support.cl KK_TO_HALF, ...


def _epilogue_tasks(job: Job) -> tuple[np.ndarray, int] | None:
    """The table kk_epilogue runs after the stages (one row per task, see support.cl), and its work items."""
    rows, first = [], 0

    def task(kind: int, items: int, a: int, b: int, count: int, status: Region) -> None:
        nonlocal first
        rows.append((kind, first, first + items, a, b, count, status.offset, 0))
        first += items

    for item in job.finish:
        task(EPILOGUE_TO_HALF, _items(item.count), job.buffers[item.buffer].offset, item.destination.offset,
             item.count, item.poison_stats)
    for index, count, stats in job.scan:
        task(EPILOGUE_FIND_POISON, _items(count), job.buffers[index].offset, 0, count, stats)
    for start, nbytes, flag in job.guards:
        task(EPILOGUE_CHECK_GUARD, _items(nbytes, 4 * SUPPORT_CHUNK), start, 0, nbytes, flag)
    if not rows:
        return None
    return np.array(rows, np.uint64), first


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
        self.pool_path = None
        self.pool_map = None
        self.pool_buffer = None
        self.views: dict[tuple[int, int], object] = {}     # sub-buffers of the mapped arena, by region
        self.jobs: dict[str, Job] = {}
        self.commands: dict[str, list] = {}                 # job key -> prepared launches (this arena)
        self.poisoned: set[tuple[int, int]] = set()         # (offset, words) of outputs poisoned for the next run
        self.deferred: list = []                            # the poison commands to enqueue after the reply
        source, options = _support_program()
        support, log = self.program("kk-support", source, options)
        if support is None:
            raise RuntimeError(f"the emulator's support program does not build: {log}")
        self.info = {"platform": platform.version, "device": self.device.name,
                     "max_work_group_size": self.device.max_work_group_size,
                     "base_align": self.device.mem_base_addr_align // 8}

    def program(self, key: str, source: str | bytes, options: str):
        """Built from OpenCL C text, or from SPIR bitcode (bytes: arithmetic="fp16")."""
        prg = self.programs.get(key)
        if prg is None:
            if isinstance(source, bytes):
                prg = self.cl.Program(self.ctx, [self.device], [source])
            else:
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

            self.queue.finish()           # deferred work may still write into the old mapping
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

    def _map_pool(self, pool: tuple[str, int] | None):
        """Map the result pool the parent names (it changes when the parent outgrows one)."""
        if pool is None or pool[0] == self.pool_path:
            return
        import mmap

        self.queue.finish()               # nothing may still write into the old pool
        self.commands = {}                # their epilogues point at the old pool
        self.pool_buffer = None
        if self.pool_map is not None:
            with contextlib.suppress(BufferError):     # still referenced: unmapped when that goes
                self.pool_map.close()
        fd = os.open(pool[0], os.O_RDWR)
        try:
            self.pool_map = mmap.mmap(fd, pool[1])
        finally:
            os.close(fd)
        flags = self.cl.mem_flags.READ_WRITE | self.cl.mem_flags.USE_HOST_PTR
        self.pool_buffer = self.cl.Buffer(self.ctx, flags, hostbuf=np.frombuffer(self.pool_map, np.uint8))
        self.pool_path = pool[0]

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

    def run(self, job: Job, arena: str, arena_size: int, pool: tuple[str, int] | None):
        """Poison, round the inputs, run the stages, convert and check: one queue submission, one wait."""
        # Outputs the last run converted were poisoned again after its reply: since then the parent has written
        # only into this job's inputs, guards and status words, which never overlap this job's outputs (before
        # writing for another job it waits for that poison: WorkerClient.prepare). Taken here, before anything
        # can fail, so no later run trusts a state this one may have spoiled.
        poisoned, self.poisoned = self.poisoned, set()
        self.deferred = []
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
        self._map_pool(pool)
        if job.finish and self.pool_buffer is None:
            return ("error", "the job has fp16 outputs and no result pool was named")
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
        for kernel, global_size, local_size, fills, _ in commands:
            if fills is None or fills not in poisoned:
                self.cl.enqueue_nd_range_kernel(self.queue, kernel, global_size, local_size)
        self.queue.finish()
        converted = {(job.buffers[item.buffer].offset, item.count) for item in job.finish}
        self.deferred = [(command, fills) for command in commands if (fills := command[3]) in converted]
        timings["device"] = time.perf_counter() - t1
        return ("ok", timings)

    def after_reply(self) -> None:
        """Poison the converted outputs again for the next run, while the parent reads the results. The queue
        is in order, so a next run of the same job starts after this; another job waits for it (settle)."""
        for (kernel, global_size, local_size, _, _), fills in self.deferred:
            self.cl.enqueue_nd_range_kernel(self.queue, kernel, global_size, local_size)
            self.poisoned.add(fills)
        self.deferred = []
        self.queue.flush()

    def settle(self) -> None:
        self.queue.finish()

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
            commands.append((kernel, (grid,), (SUPPORT_GROUP,), fills, None))

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
            commands.append((kernel, launch.global_size, launch.local_size, None, None))
        epilogue = _epilogue_tasks(job)
        if epilogue is not None:
            table, items = epilogue
            tasks = cl.Buffer(self.ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=table)
            kernel = cl.Kernel(self.programs["kk-support"], "kk_epilogue")
            pool = self.pool_buffer if job.finish else self.arena_buffer    # any buffer when unused
            kernel.set_args(self.arena_buffer, pool, tasks, np.uint32(len(table)), poison, np.uint8(GUARD_BYTE))
            grid = -(-items // SUPPORT_GROUP) * SUPPORT_GROUP
            commands.append((kernel, (grid,), (SUPPORT_GROUP,), None, tasks))
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
    spin_until = 0.0
    while True:
        # awake on a hint: a job about to come is taken without the wake-up a sleeping process pays
        while spin_until and not conn_in.poll(0) and time.perf_counter() < spin_until:
            pass
        try:
            message = conn_in.recv()
        except EOFError:
            return
        if message is None:
            return
        kind = message[0]
        if kind in ("wake", "settle"):
            if kind == "settle":           # the parent is about to write where deferred work may still run
                try:
                    device.settle()
                    conn_out.send(("ok",))
                except Exception as exc:
                    conn_out.send(("error", f"{type(exc).__name__}: {exc}"))
            spin_until = time.perf_counter() + WAKE_SPIN
            continue
        spin_until = 0.0
        kind, job, arena, arena_size, pool = message
        try:
            if kind == "job":
                device.remember(job)
            else:                             # "run": a job sent before, by key
                job = device.jobs.get(job)
            if job is None:
                device.poisoned.clear()       # the parent has filled the arena for a job we do not have
                reply = ("unknown_job",)
            else:
                reply = device.run(job, arena, arena_size, pool)
        except Exception as exc:  # an OpenCL failure of one job must not end the worker
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn_out.send(reply)
        if reply[0] == "ok":
            try:
                device.after_reply()
            except Exception:             # nothing poisoned: the next run poisons before it starts
                device.poisoned.clear()


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


def _address(mapping) -> int:
    return np.frombuffer(mapping, np.uint8, 1).ctypes.data     # the temporary view releases the mapping again


class _Lease:
    """The base object of an output array in a ResultPool: keeps the mapping, and through a finalizer the
    region, while the array or any view of it lives."""

    __slots__ = ("__array_interface__", "_mapping", "__weakref__")

    def __init__(self, address: int, shape: tuple[int, ...], dtype, mapping):
        self.__array_interface__ = {"version": 3, "shape": tuple(shape), "typestr": np.dtype(dtype).str,
                                    "data": (address, False)}
        self._mapping = mapping


class ResultPool:
    """Shared memory the worker writes fp16 outputs into and the caller keeps them in: no copy out of the arena.

    Each output of a call gets a region; the array handed to the caller leases it until the array and every view
    of it are gone, then another call may use it. A pool that runs out is retired and a larger one takes over;
    a retired pool is unmapped when its last lease ends. Like any shared mapping, a forked child shares the
    arrays with its parent."""

    MIN_SIZE = 16 << 20

    def __init__(self, size: int):
        self.file = Arena(size)
        self.path, self.size = self.file.path, size
        self._free: list[tuple[int, int]] = [(0, size)]          # (offset, bytes), in order, never adjacent
        self._released: collections.deque = collections.deque()  # ended leases, folded in by the next alloc
        self._leased: set[int] = set()
        self._retired = False
        self._base = _address(self.file.map)

    def alloc(self, nbytes: int) -> int | None:
        self._fold_released()
        nbytes = -(-max(nbytes, 1) // ALIGN) * ALIGN
        for i, (offset, size) in enumerate(self._free):
            if size >= nbytes:
                self._free[i:i + 1] = [(offset + nbytes, size - nbytes)] if size > nbytes else []
                return offset
        return None

    def free(self, offset: int, nbytes: int) -> None:
        self._released.append((offset, -(-max(nbytes, 1) // ALIGN) * ALIGN))

    def _fold_released(self) -> None:
        # Finalizers may run on any thread, even inside this method: they only append to the deque.
        while self._released:
            offset, nbytes = self._released.popleft()
            at = bisect.bisect(self._free, (offset, 0))
            if at > 0 and sum(self._free[at - 1]) == offset:          # joins the block before
                offset, nbytes = self._free[at - 1][0], self._free[at - 1][1] + nbytes
                at -= 1
                del self._free[at]
            if at < len(self._free) and offset + nbytes == self._free[at][0]:     # and the one after
                nbytes += self._free[at][1]
                del self._free[at]
            self._free.insert(at, (offset, nbytes))

    def free_blocks(self) -> list[tuple[int, int]]:
        """(offset, bytes) of each free block, in order."""
        self._fold_released()
        return list(self._free)

    def view(self, offset: int, count: int) -> np.ndarray:
        return self.file.view(np.float16, offset, count)

    def lease(self, offset: int, count: int, shape: tuple[int, ...]) -> np.ndarray:
        """The fp16 region as the caller's array: no copy."""
        holder = _Lease(self._base + offset, shape, np.float16, self.file.map)
        self._leased.add(offset)
        weakref.finalize(holder, self._end_lease, offset, count * 2)
        return np.asarray(holder)

    def _end_lease(self, offset: int, nbytes: int) -> None:
        self._leased.discard(offset)
        self.free(offset, nbytes)
        if self._retired and not self._leased:
            self.file.close()

    def retire(self) -> None:
        self._retired = True
        self.file.unlink()
        if not self._leased:
            self.file.close()


class WorkerClient:
    """A persistent worker process; restarted after a timeout or a crash.

    Use `with client.session() as s:` to hold it (and its arena) for one emulation: `s.arena(size)`,
    write tensors into it, `s.run(job, arena, timeout)`, read the results, leave the block."""

    def __init__(self):
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._poller = None
        self._arena: Arena | None = None
        self._pool: ResultPool | None = None
        self._built: set[str] = set()    # programs the running worker has; their text is not sent again
        self._jobs: set[str] = set()     # job keys the running worker keeps; a call sends only the key
        self._deferred: tuple | None = None   # (job key, arena path) whose output poison may still be running
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
        code = f"from kernelkit.kernel.emulator.worker import main; main({child_read}, {child_write})"
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
        self._poller = select.poll()     # Connection.poll builds a selector per call: a measurable cost here
        self._poller.register(parent_read, select.POLLIN)
        if not self._replied(STARTUP_TIMEOUT):
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

    def _replied(self, timeout: float) -> bool:
        """Whether the worker's reply (or its end) is there to read within `timeout` seconds."""
        return bool(self._poller.poll(timeout * 1000))     # retried with the time left after a signal (PEP 475)

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
        self._proc = self._send = self._recv = self._poller = None
        self._built = set()
        self._jobs = set()
        self._deferred = None
        if self._arena is not None:      # a new worker maps a new arena
            self._arena.close()
            self._arena = None
        if self._pool is not None:       # and a new pool: the old one lives on while callers hold its arrays
            self._pool.retire()
            self._pool = None

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
            self._proc = self._send = self._recv = self._poller = self._arena = self._pool = None
            self._built = set()
            self._jobs = set()
            self._deferred = None
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

    def results(self, counts: list[int]) -> tuple[ResultPool, list[int]]:
        """A region of the result pool for each fp16 output of `counts` elements; free them unless leased."""
        if not counts:
            return self._pool, []
        offsets = []
        pool = self._pool
        if pool is not None:
            for count in counts:
                offset = pool.alloc(count * 2)
                if offset is None:
                    break
                offsets.append(offset)
        if pool is None or len(offsets) < len(counts):
            if pool is not None:
                for offset, count in zip(offsets, counts):
                    pool.free(offset, count * 2)
                pool.retire()
            need = sum(-(-max(count * 2, 1) // ALIGN) * ALIGN for count in counts)
            pool = self._pool = ResultPool(max(ResultPool.MIN_SIZE, 2 * need, 2 * pool.size if pool else 0))
            offsets = [pool.alloc(count * 2) for count in counts]
        return pool, offsets

    def prepare(self, job: Job, arena: Arena, timeout: float) -> None:
        """Call before writing the arena for `job`. Another job may own regions the worker is still poisoning
        for its next run: wait for that. Otherwise hint the worker to stay awake while the parent writes."""
        with self._lock:
            pending, self._deferred = self._deferred, None
            try:
                if pending is not None and (job.key is None or pending != (job.key, arena.path)):
                    self._send.send(("settle",))
                    if not self._replied(timeout):
                        self._kill()
                        raise WorkerTimeout()
                    reply = self._recv.recv()
                    if reply[0] != "ok":
                        raise WorkerCrashed(f"the OpenCL worker could not finish its queue: {reply[1]}")
                else:
                    self._send.send(("wake",))
            except (BrokenPipeError, EOFError, OSError):
                log = self._log_tail()
                self._kill()
                raise WorkerCrashed("the OpenCL worker died between runs", log) from None

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
                if job.finish:
                    self._deferred = (job.key, arena.path)
            if arena is self._arena and reply[0] == "ok":
                arena.unlink()                   # the worker has it mapped now (not before a build error)
            if reply[0] == "ok" and job.finish and self._pool is not None:
                self._pool.file.unlink()
            return reply

    def _exchange(self, job: Job, arena: Arena, timeout: float, known: bool):
        pool = (self._pool.path, self._pool.size) if job.finish else None
        if known:
            message = ("run", job.key, arena.path, arena.size, pool)
        else:
            unbuilt = {k: v for k, v in job.programs.items() if k not in self._built}
            message = ("job", replace(job, programs=unbuilt,
                                      program_options={k: job.program_options.get(k, "") for k in unbuilt}),
                       arena.path, arena.size, pool)
        try:
            self._send.send(message)
        except (BrokenPipeError, OSError):
            log = self._log_tail()
            self._kill()
            raise WorkerCrashed("the OpenCL worker died before taking the job", log) from None
        if not self._replied(timeout):
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
