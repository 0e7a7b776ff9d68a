"""Reading a user's .npz (inputs for `emulate` and `verify`, expected outputs) with bounds on what it declares.

`numpy.load` allocates an array of the size its header declares before reading the data, trusts the zip's
member sizes and lets zipfile and zlib errors through. Here every member is checked first: a regular file
under the weights limit, no encryption or unknown compression, an .npy header whose shape and dtype make at
most KERNELKIT_MAX_TENSOR_BYTES and no more than the member holds, a plain numeric dtype. Any failure is one
KernelkitError naming the file and the member.
"""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import regular_file

HINT = "write it with numpy.savez(path, in0=..., in1=...)"
_KINDS = "biuf"                      # bool, signed and unsigned integers, floats: what a tensor can hold


def load_npz(path: str | Path, *, what: str = ".npz file") -> dict:
    """{name: array} of every member of the .npz at `path` (names without .npy), in the file's order."""
    path = Path(path)
    size = regular_file(path, what=what).st_size
    limits.WEIGHTS_BYTES.check(size, f"the {what}", path=path)
    arrays = {}
    member = None
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise KernelkitError(f"member {dup!r} appears twice", path=path, hint=HINT)
            for info in infos:
                member = info.filename
                if info.flag_bits & 0x1:
                    raise KernelkitError("member is encrypted", path=path, where=member, hint=HINT)
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise KernelkitError(f"member uses compression method {info.compress_type}; numpy writes "
                                         "stored or deflated members", path=path, where=member, hint=HINT)
                if not member.endswith(".npy") or "/" in member or member.startswith("."):
                    raise KernelkitError("member is not an .npy array at the top of the archive", path=path,
                                         where=member, hint=HINT)
                limits.TENSOR_BYTES.check(info.file_size, "the member's size", path=path, where=member)
                with archive.open(info) as handle:
                    arrays[member[:-4]] = _read_array(handle, info.file_size, path, member)
    except KernelkitError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError,
            SyntaxError, tokenize.TokenError, OverflowError, KeyError, TypeError) as exc:
        # zipfile, zlib and numpy's header parser raise all of these for damaged files
        text = str(exc) or type(exc).__name__
        raise KernelkitError(f"not a readable .npz file: {text}", path=path, where=member, hint=HINT) from None
    return arrays


def _read_array(handle, member_size: int, path: Path, member: str):
    import numpy as np
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise KernelkitError(f".npy format version {version} is not one numpy writes", path=path, where=member)
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = reader(handle, max_header_size=10_000)
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise KernelkitError(f"array has dtype {dtype}; kernelkit reads bool, integer and float arrays",
                             path=path, where=member, hint="convert it with array.astype(numpy.float32)")
    if any(d < 0 for d in shape):
        raise KernelkitError(f"array shape {list(shape)} has a negative dimension", path=path, where=member)
    nbytes = limits.tensor_bytes(shape, dtype.itemsize)
    limits.check_tensor(shape, dtype.itemsize, "the array", path=path, where=member)
    if nbytes > member_size:
        raise KernelkitError(f"array of shape {list(shape)} needs {nbytes} bytes, the member holds "
                             f"{member_size}", path=path, where=member, hint="the file is truncated")
    data = handle.read(nbytes)
    if len(data) != nbytes:
        raise KernelkitError(f"array of shape {list(shape)} needs {nbytes} bytes, the member holds {len(data)}",
                             path=path, where=member, hint="the file is truncated")
    array = np.frombuffer(data, dtype=dtype).copy()
    return array.reshape(shape, order="F" if fortran else "C")
