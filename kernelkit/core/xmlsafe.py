"""XML parsing with entity resolution, DTD loading and network access off.

Every XML file kernelkit reads (bindings, IR) goes through here. A document that declares a DTD is refused
outright: neither format uses one, and it is how entity-expansion attacks arrive.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input
from kernelkit.core.limits import MiB

_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")


def _parser(huge: bool = False):
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=huge, remove_blank_text=False)


def read_limited(path: str | Path, max_bytes: int) -> bytes:
    return read_input(path, max_bytes)


def _refuse_dtd(data: bytes, path) -> None:
    match = _DOCTYPE.search(data)
    if match:
        line = data.count(b"\n", 0, match.start()) + 1
        raise KernelkitError("document declares a DTD or entities, which kernelkit refuses to read",
                             path=path, line=line, hint="remove the <!DOCTYPE>/<!ENTITY> declarations")


def parse_document(data: bytes, *, path=None, huge: bool = False):
    """Parse a whole XML document; returns the root element."""
    from lxml import etree

    _refuse_dtd(data, path)
    try:
        return etree.fromstring(data, _parser(huge))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise KernelkitError(f"malformed XML: {exc.msg}", path=path, line=line) from None


def parse_file(path: str | Path, *, max_bytes: int = 64 * MiB):
    return parse_document(read_limited(path, max_bytes), path=path, huge=max_bytes > 10 * MiB)


def parse_fragment_run(data: bytes | str, *, path=None, root_tag: str = "kernelkit-fragment",
                       max_bytes: int | None = None):
    """Parse a run of top-level elements with no wrapper root (as MYRIAD binding files are).

    The XML declaration is blanked out with spaces and the wrapper opens on the first line, so line
    numbers in errors and on elements match the user's file.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    if max_bytes is not None and len(data) > max_bytes:
        raise KernelkitError(f"text is {len(data)} bytes, more than the {max_bytes} allowed", path=path)
    _refuse_dtd(data, path)
    decl = _XML_DECL.match(data)
    if decl:
        data = b" " * decl.end() + data[decl.end():]
    wrapped = f"<{root_tag}>".encode() + data + f"</{root_tag}>".encode()
    return parse_document(wrapped, path=path)
