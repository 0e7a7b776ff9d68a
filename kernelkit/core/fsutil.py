"""Safe inputs and atomic outputs.

Inputs: a user's file is read only when it is a regular file (a FIFO would block, /dev/zero never end) and
no larger than the caller's limit; a name read from inside a user's file (a binding's <Source>, a spec's
template, compile.conf's custom layers, ONNX external data) becomes a path only through `named_file`.
Outputs: every file goes to a temporary sibling first, then is renamed into place; a folder is built in a
staging sibling and renamed whole. A process killed with SIGKILL leaves its sibling behind (`.NAME.PID.XXXX.tmp`,
`.NAME.PID.XXXX.staging`, `.NAME.old-PID`): hidden, with a suffix no reader takes, and removed by the next write
of the same output once that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from kernelkit.core.errors import KernelkitError

_UMASK = os.umask(0)
os.umask(_UMASK)


class WriteFailed(KernelkitError, OSError):
    """An output could not be written (a KernelkitError; an OSError too, for best-effort callers)."""


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    return "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device" \
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def regular_file(path: str | Path, *, what: str = "file") -> os.stat_result:
    """The stat of `path` (links followed) when it is a regular file, else a KernelkitError saying what it is."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        kind = "a link to nothing" if path.is_symlink() else None
        raise KernelkitError(f"{what} not found" + (f" ({kind})" if kind else ""), path=path) from None
    except OSError as exc:
        raise KernelkitError(f"cannot read {what}: {exc.strerror}", path=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise KernelkitError(f"{what} expected, found a folder", path=path)
    if not stat.S_ISREG(st.st_mode):
        raise KernelkitError(f"{what} expected, found {_kind(st)}", path=path,
                             hint="pass the file itself (kernelkit reads regular files only)")
    return st


NAME_MAX = 255      # bytes in one path component (Linux, macOS, every common file system)
PATH_MAX = 4096     # bytes in a whole path, its terminating NUL included (Linux)


def named_file(base: str | Path, name: str, *, source: str | Path | None, where: str, line: int | None = None,
               what: str = "file", inside: bool = True, suffix: str | None = None,
               missing_ok: bool = False) -> Path | None:
    """The path of a regular file that a user's file (`source`, at element or key `where`) names: `name` taken
    relative to the folder `base`, with `suffix` in place of its own when given. The one place such a name
    becomes a path: the file system never sees a name it cannot hold (ENAMETOOLONG, NUL).

    `inside`: the format keeps names inside `base`, so absolute names, `..` and symbolic links that lead out
    are refused. A file that is not there is None when `missing_ok`, else an error; everything else wrong with
    the name or the file is a KernelkitError naming `source` and `where`.
    """
    shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}... ({len(name)} characters)"

    def refuse(problem: str, hint: str) -> KernelkitError:
        return KernelkitError(f"{what} {shown}: {problem}", path=source, line=line, where=where, hint=hint)

    if not name.strip():
        raise refuse("an empty name", f"name the {what}")
    if "\0" in name:
        raise refuse("the name holds a NUL byte", "remove the NUL byte; no file name can hold one")
    if inside and (Path(name).is_absolute() or ".." in Path(name).parts):
        raise refuse("the name leads out of the folder", f"name a file inside {base} by a path relative to it, "
                     "without '..'")
    base = Path(base)
    path = base / name
    if path.name in ("", ".", ".."):
        raise refuse("the name is a folder's, not a file's", f"name the {what} itself")
    if suffix is not None:
        path = path.with_suffix(suffix)
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        raise refuse("the name cannot be a file name here (not encodable)", "use plain characters") from None
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")) or len(encoded) >= PATH_MAX:
        raise refuse(f"the name is longer than a file system allows ({NAME_MAX} bytes a part, {PATH_MAX - 1} "
                     "bytes in all)", f"rename the {what} and the reference to it to something shorter")
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if missing_ok:
            return None
        link = " (a link to nothing)" if path.is_symlink() else ""
        raise refuse(f"not found{link}: {path}", f"put the {what} there, or correct the name") from None
    except OSError as exc:
        raise refuse(f"cannot read {path}: {exc.strerror}", f"check the {what} and its folder") from None
    if inside and not path.resolve().is_relative_to(base.resolve()):
        raise refuse(f"{path} is a symbolic link out of {base}", f"put the {what} itself inside {base}")
    if not stat.S_ISREG(st.st_mode):
        raise refuse(f"{path} is {_kind(st)}, not a file", f"name the {what} itself (kernelkit reads regular "
                     "files only)")
    return path


def read_input(path: str | Path, max_bytes: int, *, what: str = "file", limit=None) -> bytes:
    """Read a user's input file whole, refusing one larger than `max_bytes`, with errors that name it.
    `limit` (a kernelkit.core.limits.Limit) says which variable raises `max_bytes`."""
    path = Path(path)
    size = regular_file(path, what=what).st_size
    hint = limit.hint() if limit is not None else "check that this is the file you meant"
    if size > max_bytes:
        raise KernelkitError(f"{what} is {size} bytes, more than the {max_bytes} bytes allowed for it",
                             path=path, hint=hint)
    try:
        with open(path, "rb") as handle:
            data = handle.read(size)
            while len(data) <= max_bytes:             # a file that grows while we read stays bounded
                more = handle.read(min(max_bytes + 1 - len(data), 64 << 20))
                if not more:
                    break
                data += more
    except IsADirectoryError:
        raise KernelkitError(f"{what} expected, found a folder", path=path) from None
    except OSError as exc:
        raise KernelkitError(f"cannot read {what}: {exc.strerror}", path=path) from None
    if len(data) > max_bytes:
        raise KernelkitError(f"{what} grew past the {max_bytes} bytes allowed for it while being read",
                             path=path, hint=hint)
    return data


# --- leftovers of killed writers --------------------------------------------------------------------------

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)\.[^.]+\.(?:tmp|staging)|old-(?P<old>\d+))$")


def is_leftover(name: str) -> bool:
    """Whether a file name is one of the temporary siblings atomic_write and staged_directory make."""
    return _LEFTOVER.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(target: str | Path) -> list[Path]:
    """Remove the temporary siblings of `target` that writers killed before they finished left behind
    (only those whose process is gone). Returns what was removed."""
    target = Path(target)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if not match or match["name"] != target.name:
            continue
        pid = int(match["pid"] or match["old"])
        if pid == os.getpid() or _alive(pid):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if match["old"] and not os.path.lexists(target):
                os.replace(path, target)       # the previous output, moved aside by a replace never finished
                continue
            shutil.rmtree(path) if entry.is_dir(follow_symlinks=False) else path.unlink()
            removed.append(path)
    return removed


def _prepare_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WriteFailed("cannot create the output: a file is in the way of its folder", path=path,
                          hint="choose another output path") from None
    except OSError as exc:
        raise WriteFailed(f"cannot create the output folder: {exc.strerror}", path=path) from None


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write a whole file or nothing: a reader never sees half of it."""
    path = Path(path)
    _prepare_parent(path)
    try:
        is_dir = path.is_dir()
    except OSError as exc:                 # e.g. a name too long for the file system
        raise WriteFailed(f"cannot write the output: {exc.strerror}", path=path) from None
    if is_dir:
        raise WriteFailed("output path is a folder", path=path, hint="give a file name, or remove the folder")
    clean_leftovers(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteFailed(f"cannot write the output: {exc.strerror}", path=path) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, KernelkitError):
            raise WriteFailed(f"cannot write the output: {exc.strerror or exc}", path=path) from None
        raise
    return path


@contextlib.contextmanager
def staged_directory(target: str | Path, *, force: bool = False, allow_existing: bool = False,
                     last: Sequence[str] = ()) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target` in one rename.

    A non-empty target is refused unless `force` (replace it) or `allow_existing` (merge: files of the
    staging folder overwrite same-named files, other files stay; the names in `last` are moved after the
    others, so a file that says "this output is complete" appears only once the rest is in place). On any
    error the staging folder is removed and the target is left as it was.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise KernelkitError("output path exists and is not a folder", path=target,
                             hint="choose another output folder")
    clean_leftovers(target)
    if target.is_dir() and any(target.iterdir()) and not (force or allow_existing):
        raise KernelkitError("output folder is not empty", path=target,
                             hint="pass --force to replace it, or choose an empty folder")
    _prepare_parent(target)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".staging",
                                      dir=target.parent))
    except OSError as exc:
        raise WriteFailed(f"cannot create the output folder: {exc.strerror}", path=target) from None
    try:
        yield stage
        if allow_existing and target.is_dir():
            for item in sorted(stage.iterdir(), key=lambda p: p.name in last):
                dest = target / item.name
                if dest.is_dir() and not item.is_dir():
                    shutil.rmtree(dest)
                os.replace(item, dest)
            shutil.rmtree(stage)
        elif target.exists():
            # killed between these two renames, the previous output waits in `old`: the next run puts it back
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
