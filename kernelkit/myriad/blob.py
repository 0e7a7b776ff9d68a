"""The MYRIAD blob header: read it, and patch the blob version the way Luxonis' blobconverter does.

After a 52-byte ELF-like preamble the header is a run of little-endian u32 fields (field order as DepthAI's
blob reader documents it). The 2021.4 plugin writes blob version 6.0, which DepthAI reads as
2022.1-compatible; writing (2021, 4) at bytes 60/64 makes DepthAI report 2021.4.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.target import get_target, target_names

ELF_PREAMBLE = b"\x7felf"
HEADER_OFFSET = 52
BLOB_MAGIC = 9709
VERSION_MAJOR_OFFSET = 60
VERSION_MINOR_OFFSET = 64
# Names accepted by `kernelkit compile --blob-version`, and the (major, minor) they write: every target's
# blob version (data/targets.toml).
BLOB_VERSIONS = {name: get_target(name).blob_version for name in target_names() if get_target(name).blob_version}


@dataclass(frozen=True)
class BlobHeader:
    magic: int
    file_size: int
    version_major: int
    version_minor: int
    inputs: int
    outputs: int
    stages: int
    inputs_size: int
    outputs_size: int
    batch_size: int
    bss_size: int
    cmx_slices: int
    shaves: int
    has_hw_stage: int
    has_shave_stage: int
    has_dma_stage: int
    input_info_offset: int
    output_info_offset: int
    stages_offset: int
    constants_offset: int

    @property
    def version(self) -> tuple[int, int]:
        return (self.version_major, self.version_minor)


_FIELD_COUNT = len(fields(BlobHeader))
HEADER_END = HEADER_OFFSET + 4 * _FIELD_COUNT


def read_header(blob: bytes | str | Path) -> BlobHeader:
    """Parse the header of a blob (bytes or a path). KernelkitError if it is not a MYRIAD blob."""
    path = None
    if not isinstance(blob, (bytes, bytearray)):
        from kernelkit.core.fsutil import regular_file

        path = Path(blob)
        size = regular_file(path, what="blob").st_size
        try:
            with open(path, "rb") as handle:
                data = handle.read(HEADER_END)
        except OSError as exc:
            raise KernelkitError(f"cannot read blob: {exc.strerror}", path=path) from None
    else:
        data, size = bytes(blob[:HEADER_END]), len(blob)
    not_blob = "not a MYRIAD blob"
    if len(data) < HEADER_END or not data.startswith(ELF_PREAMBLE):
        raise KernelkitError(f"{not_blob}: no blob header in the first {HEADER_END} bytes", path=path,
                             hint="pass a .blob written by `kernelkit compile` or the OpenVINO compile_tool")
    header = BlobHeader(*struct.unpack_from(f"<{_FIELD_COUNT}I", data, HEADER_OFFSET))
    if header.magic != BLOB_MAGIC:
        raise KernelkitError(f"{not_blob}: magic number {header.magic} at byte {HEADER_OFFSET}, expected {BLOB_MAGIC}",
                             path=path)
    if header.file_size != size:
        raise KernelkitError(f"truncated or padded blob: header says {header.file_size} bytes, file has {size}",
                             path=path, hint="compile the model again")
    return header


def with_version(blob: bytes, version: str) -> bytes:
    """The blob with its version fields set to a named version (a name in BLOB_VERSIONS); the header is checked first."""
    if version not in BLOB_VERSIONS:
        raise KernelkitError(f"unknown blob version {version!r}", where="--blob-version",
                             hint=f"use one of: {', '.join(BLOB_VERSIONS)}")
    read_header(blob)
    major, minor = BLOB_VERSIONS[version]
    patched = bytearray(blob)
    struct.pack_into("<I", patched, VERSION_MAJOR_OFFSET, major)
    struct.pack_into("<I", patched, VERSION_MINOR_OFFSET, minor)
    return bytes(patched)
