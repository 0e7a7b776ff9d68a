"""Metadata-only kernel ELFs: what the MYRIAD plugin reads from a clc `.bin` before it compiles, and nothing else.

The 2021.4 plugin opens a custom layer's `<Source>` as a 32-bit ELF and parses two sections, `.neo_metadata`
(a header, kernel descriptors, argument descriptors) and `.neo_metadata.str` (their names), to learn each
kernel's argument list; it then matches the binding's `entry` and `arg-name`s against it, serializes the stage
and embeds the file in the blob. An ELF with just those sections lets the real plugin judge a binding where no
clc exists. It holds no code (machine "none", no program, a note saying so) and is named `*.check.elf`, so it
is never taken for a SHAVE binary; a blob made with one is a check artifact that cannot run.

What it lists, as clc would: every `__kernel` of the source in source order (the plugin wants exactly one),
`__dma_preload_K`/`__dma_postwrite_K` as variants of K rather than kernels, K's parameters in declaration
order, and the `__local` arrays declared in K as hoisted arguments (flag generated_prepost, which the plugin
skips), then one extra argument the plugin's parser expects and never reads.

Layout facts (structure sizes, field order, the version, the extra argument) are from the `ShaveElfMetadata`
headers and `custom_kernel.cpp` of OpenVINO 2021.4; the code is our own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kernelkit.facts.opencl import SCALAR_TYPES
from kernelkit.kernel.bindings import clsource
from kernelkit.core.errors import KernelkitError

CHECK_SUFFIX = ".check.elf"
MD_VERSION = 0x00010002          # metadata 1.2, the only version the parser accepts
INVALID = 0xFFFFFFFF             # md_invalid_index
VARIANT_COUNT = 8                # scalar, vectorized, unrolled, sipp_dma, sipp_dma_vec, preload, postwrite, fallback
VARIANT_SLOTS = {"scalar": 0, "preload": 5, "postwrite": 6}
KERNEL_READS_DDR, KERNEL_WRITES_DDR = 2, 1
ARG_GENERATED_PREPOST = 8        # clc's hoisted __local buffers; the plugin skips them
ADDRESS_SPACE_CODES = {"private": 0, "global": 1, "constant": 2, "local": 3}
NOTE_OWNER = b"kernelkit\0"
NOTE_TYPE = 1
NOTE_HEAD = "metadata only, no SHAVE code: for the MYRIAD plugin's binding check, never for a device"

_HEADER = struct.Struct("<13I")
_KERNEL = struct.Struct(f"<9I{3 * VARIANT_COUNT}I")
_ARG = struct.Struct("<7I")
_FUNC = struct.Struct("<I")


@dataclass(frozen=True)
class MetadataArg:
    name: str
    address_space: str          # 'global' | 'constant' | 'local' | 'private'
    element_size: int
    hoisted: bool = False       # generated_prepost: a __local buffer clc hoisted into an argument


@dataclass(frozen=True)
class KernelMetadata:
    entry: str
    args: tuple[MetadataArg, ...]
    variants: tuple[str, ...] = ()      # "preload" / "postwrite" companions, besides the scalar kernel


def _element_size(arg: clsource.KernelArg) -> int:
    known = SCALAR_TYPES.get(arg.scalar_type)
    return (known.size if known else 4) * max(arg.vector_width, 1)


def metadata_from_source(text: str, *, path=None, defines=None) -> list[KernelMetadata]:
    """The kernels clc would list for a source: entry points in source order, companions as variants."""
    from kernelkit.kernel.builder.lint import local_memory_estimate
    from kernelkit.kernel.emulator import source as shave_source

    kernels = [k for k in clsource.parse_kernels(text, defines, path=path) if k.has_body]
    unreadable = [k for k in kernels if k.unreadable]
    if unreadable:
        k = unreadable[0]
        raise KernelkitError(f"cannot read the parameters of {k.name!r}: {', '.join(k.unreadable)}", path=path,
                             line=k.line, hint="install clang-15 so macros in the signature are expanded")
    companions = {(k.companion_of, k.companion_kind) for k in kernels if k.companion_kind}
    found = []
    for k in kernels:
        if k.companion_kind:
            continue
        args = [MetadataArg(a.name, a.address_space, _element_size(a)) for a in k.args]
        names = [k.name] + [f"__dma_{kind}_{k.name}" for kind in ("preload", "postwrite")]
        hoisted = local_memory_estimate(shave_source.kernel_text(text, names))
        args += [MetadataArg(name, "local", size, hoisted=True) for name, size in hoisted]
        variants = tuple(kind for kind in ("preload", "postwrite") if (k.name, kind) in companions)
        found.append(KernelMetadata(k.name, tuple(args), variants))
    return found


class _Strings:
    """A string table that starts with the empty string, as ELF string tables do."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        if text not in self._offsets:
            self._offsets[text] = len(self.data)
            self.data += text.encode() + b"\0"
        return self._offsets[text]


def metadata_sections(kernels: Sequence[KernelMetadata]) -> tuple[bytes, bytes]:
    """The `.neo_metadata` and `.neo_metadata.str` contents for these kernels."""
    strings = _Strings()
    arg_records: list[bytes] = []
    kernel_records: list[bytes] = []
    functions = 0
    for kernel in kernels:
        first_arg = len(arg_records)
        pack_offset = 0
        for arg in kernel.args:
            flags = ARG_GENERATED_PREPOST if arg.hoisted else 0
            arg_records.append(_ARG.pack(flags, strings.add(arg.name), INVALID, arg.element_size,
                                         ADDRESS_SPACE_CODES[arg.address_space], min(arg.element_size, 16) or 1,
                                         pack_offset))
            pack_offset += 4 if arg.address_space != "private" else max(arg.element_size, 4)
        # The plugin reads arg_count - 1 arguments: the last counted one stands for the extra one clc lists.
        arg_records.append(_ARG.pack(0, 0, INVALID, 0, ADDRESS_SPACE_CODES["private"], 4, pack_offset))
        variants = [INVALID, 0, INVALID] * VARIANT_COUNT
        for kind in ("scalar",) + kernel.variants:
            name = kernel.entry if kind == "scalar" else f"__dma_{kind}_{kernel.entry}"
            slot = 3 * VARIANT_SLOTS[kind]
            variants[slot:slot + 3] = [strings.add(name), 1, functions]
            functions += 1
        kernel_records.append(_KERNEL.pack(KERNEL_READS_DDR | KERNEL_WRITES_DDR, len(kernel.args) + 1, first_arg,
                                           0, 0, INVALID, strings.add(kernel.entry), 0, 0, *variants))
    kernel_first = _HEADER.size
    arg_first = kernel_first + _KERNEL.size * len(kernel_records)
    func_first = arg_first + _ARG.size * len(arg_records)
    end = func_first + _FUNC.size * functions
    header = _HEADER.pack(MD_VERSION, len(kernel_records), kernel_first, len(arg_records), arg_first,
                          0, end, 0, end, 0, end, functions, func_first)
    funcs = b"".join(_FUNC.pack(0) for _ in range(functions))
    return header + b"".join(kernel_records) + b"".join(arg_records) + funcs, bytes(strings.data)


# ELF32 little-endian, relocatable, no machine: a file no SHAVE loader would take for code.
_EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
_PHDR = struct.Struct("<8I")
_SHDR = struct.Struct("<10I")
SHT_PROGBITS, SHT_STRTAB, SHT_NOTE = 1, 3, 7
ET_REL, EM_NONE, PT_NULL = 1, 0, 0


def _align(n: int, to: int = 4) -> int:
    return (n + to - 1) // to * to


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (_align(len(data)) - len(data))


def _note(text: str) -> bytes:
    """An ELF note (owner "kernelkit") whose text says what this file is."""
    desc = text.encode() + b"\0"
    return struct.pack("<3I", len(NOTE_OWNER), len(desc), NOTE_TYPE) + _padded(NOTE_OWNER) + _padded(desc)


def build_elf(kernels: Sequence[KernelMetadata], *, note: str = "") -> bytes:
    """A complete ELF32 file with `.neo_metadata`, `.neo_metadata.str` and a note saying what it is (plus
    `note`, e.g. which binding alternative it stands for)."""
    metadata, metadata_strings = metadata_sections(kernels)
    names = _Strings()
    sections = [(".neo_metadata", SHT_PROGBITS, metadata), (".neo_metadata.str", SHT_STRTAB, metadata_strings),
                (".note.kernelkit", SHT_NOTE, _note(NOTE_HEAD + (f"; {note}" if note else "")))]
    name_offsets = [names.add(name) for name, _, _ in sections]
    name_offsets.append(names.add(".shstrtab"))
    sections.append((".shstrtab", SHT_STRTAB, bytes(names.data)))

    # The plugin asserts a non-zero program header offset: one null program header follows the ELF header.
    start_of_body = _EHDR.size + _PHDR.size
    body = bytearray()
    placed = []
    for (_, kind, data), name in zip(sections, name_offsets):
        body += b"\0" * (_align(start_of_body + len(body)) - start_of_body - len(body))
        placed.append((name, kind, start_of_body + len(body), len(data)))
        body += data
    body += b"\0" * (_align(start_of_body + len(body)) - start_of_body - len(body))
    shoff = start_of_body + len(body)
    section_headers = bytearray(_SHDR.pack(*[0] * 10))
    for name, kind, start, size in placed:
        section_headers += _SHDR.pack(name, kind, 0, 0, start, size, 0, 0, 1 if kind == SHT_STRTAB else 4, 0)
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8   # 32-bit, little-endian, ELF version 1
    ehdr = _EHDR.pack(ident, ET_REL, EM_NONE, 1, 0, _EHDR.size, shoff, 0, _EHDR.size, _PHDR.size, 1,
                      _SHDR.size, len(placed) + 1, len(placed))
    return ehdr + _PHDR.pack(PT_NULL, 0, 0, 0, 0, 0, 0, 0) + bytes(body) + bytes(section_headers)


# ------------------------------------------------------------------------------------------------ reading

def _section(data: bytes, name: bytes) -> bytes | None:
    """The contents of the ELF32 section called `name`, or None."""
    if len(data) < _EHDR.size or not data.startswith(b"\x7fELF"):
        return None
    fields = _EHDR.unpack_from(data)
    shoff, shnum, shstrndx = fields[6], fields[12], fields[13]
    if shoff + shnum * _SHDR.size > len(data) or shstrndx >= shnum:
        return None
    headers = [_SHDR.unpack_from(data, shoff + i * _SHDR.size) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    for header in headers:
        start = names_at + header[0]
        if data[start:start + len(name) + 1] == name + b"\0":
            return data[header[4]:header[4] + header[5]]
    return None


def read_metadata(data: bytes) -> list[KernelMetadata]:
    """The kernels and arguments a kernel ELF declares (a clc `.bin` or a check ELF), read as the plugin reads
    them: the last of each kernel's counted arguments is the extra one and is not returned."""
    metadata, strings = _section(data, b".neo_metadata"), _section(data, b".neo_metadata.str")
    if metadata is None or strings is None or len(metadata) < _HEADER.size:
        raise KernelkitError("not a SHAVE kernel ELF: no .neo_metadata and .neo_metadata.str sections",
                             hint="pass a clc output or a kernelkit check ELF")
    version, kernel_count, kernel_first, _, arg_first = _HEADER.unpack_from(metadata)[:5]
    if version != MD_VERSION:
        raise KernelkitError(f"metadata version 0x{version:08x}; the plugin reads 0x{MD_VERSION:08x} only")
    if kernel_first + kernel_count * _KERNEL.size > len(metadata):
        raise KernelkitError("truncated .neo_metadata section")

    def text(offset: int) -> str:
        end = strings.find(b"\0", offset)
        return strings[offset:end if end >= 0 else None].decode("utf-8", "replace")

    spaces = {code: name for name, code in ADDRESS_SPACE_CODES.items()}
    kernels = []
    for k in range(kernel_count):
        fields = _KERNEL.unpack_from(metadata, kernel_first + k * _KERNEL.size)
        count, first, name, variant_words = fields[1], fields[2], fields[6], fields[9:]
        if arg_first + (first + count) * _ARG.size > len(metadata):
            raise KernelkitError("truncated .neo_metadata section")
        args = []
        for a in range(first, first + max(count - 1, 0)):
            flags, arg_name, _, size, space = _ARG.unpack_from(metadata, arg_first + a * _ARG.size)[:5]
            args.append(MetadataArg(text(arg_name), spaces.get(space, "private"), size,
                                    hoisted=bool(flags & ARG_GENERATED_PREPOST)))
        variants = tuple(kind for kind in ("preload", "postwrite")
                         if variant_words[3 * VARIANT_SLOTS[kind]] != INVALID)
        kernels.append(KernelMetadata(text(name), tuple(args), variants))
    return kernels


def read_note(data: bytes) -> str | None:
    """The text of a check ELF's kernelkit note (None for other files, clc's `.bin` among them)."""
    note = _section(data, b".note.kernelkit")
    if note is None or len(note) < 12:
        return None
    owner_size, desc_size, _ = struct.unpack_from("<3I", note)
    start = 12 + _align(owner_size)
    return note[start:start + desc_size].rstrip(b"\0").decode("utf-8", "replace")


def is_check_elf(data: bytes) -> bool:
    return (read_note(data) or "").startswith(NOTE_HEAD)


# ------------------------------------------------------------------------------------------------ writing

def check_elf_name(stem: str) -> str:
    return stem + CHECK_SUFFIX


def write_check_elf(cl_paths: Sequence[Path], out: Path, *, note: str = "", defines=None) -> list[KernelMetadata]:
    """Write the check ELF for the OpenCL sources `cl_paths` (concatenated, as the plugin concatenates a
    kernel's Sources) to `out`, atomically; returns what it lists."""
    from kernelkit.core.fsutil import atomic_write

    text = "\n".join(clsource.read_source(p) for p in cl_paths)
    kernels = metadata_from_source(text, path=cl_paths[0], defines=defines)
    atomic_write(out, build_elf(kernels, note=note))
    return kernels
