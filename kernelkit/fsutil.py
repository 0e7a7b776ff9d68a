"""Atomic outputs: every file goes to a temporary sibling first, then is renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import KernelkitError

_UMASK = os.umask(0)
os.umask(_UMASK)


def read_input(path: str | Path, max_bytes: int, *, what: str = "file") -> bytes:
    """Read a user's input file whole, refusing one larger than `max_bytes`, with errors that name it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise KernelkitError(f"{what} is {size} bytes, more than the {max_bytes} bytes allowed for it",
                                 path=path, hint="check that this is the file you meant")
        return path.read_bytes()
    except FileNotFoundError:
        raise KernelkitError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise KernelkitError(f"{what} expected, found a folder", path=path) from None
    except OSError as exc:
        raise KernelkitError(f"cannot read {what}: {exc.strerror}", path=path) from None


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write a whole file or nothing: a reader never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def staged_directory(target: str | Path, *, force: bool = False, allow_existing: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target` in one rename.

    A non-empty target is refused unless `force` (replace it) or `allow_existing` (merge: files of the
    staging folder overwrite same-named files, other files stay). On any error the staging folder is
    removed and the target is left as it was.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise KernelkitError("output path exists and is not a folder", path=target,
                             hint="choose another output folder")
    if target.is_dir() and any(target.iterdir()) and not (force or allow_existing):
        raise KernelkitError("output folder is not empty", path=target,
                             hint="pass --force to replace it, or choose an empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield stage
        if allow_existing and target.is_dir():
            for item in stage.iterdir():
                dest = target / item.name
                if dest.is_dir() and not item.is_dir():
                    shutil.rmtree(dest)
                os.replace(item, dest)
            shutil.rmtree(stage)
        elif target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
