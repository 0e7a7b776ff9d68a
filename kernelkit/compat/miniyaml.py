"""The small block-YAML subset blobconverter's client writes (PyYAML's `dump(default_flow_style=False)` of
plain dicts, lists and strings) and Open Model Zoo-style model.yml files use: mappings, `- ` sequences, plain,
'single' and "double" quoted scalars, `[a, b]` flow lists of scalars, `#` comments. Anything else (anchors,
tags, multi-line scalars) is a KernelkitError naming the line: this parses requests from the network, so it
never guesses."""

from __future__ import annotations

import re

from kernelkit.core.errors import KernelkitError

MAX_DEPTH = 32
_KEY = re.compile(r"^([^\s'\"#][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s+|$)")


def _refuse(problem: str, number: int, source, hint: str = "write the YAML subset blobconverter writes") -> None:
    raise KernelkitError(f"YAML: {problem}", path=source if not isinstance(source, str) else None,
                         where=f"{source} line {number}" if isinstance(source, str) else f"line {number}", hint=hint)


def _scalar(text: str, number: int, source):
    text = text.strip()
    if not text:
        return None
    if text[0] in "&*!|>%@`":
        _refuse(f"{text[:40]!r}: anchors, tags and block scalars are not read", number, source)
    if text[0] == "'":
        if len(text) < 2 or not text.endswith("'"):
            _refuse(f"unterminated quoted string {text[:40]!r}", number, source)
        return text[1:-1].replace("''", "'")
    if text[0] == '"':
        if len(text) < 2 or not text.endswith('"'):
            _refuse(f"unterminated quoted string {text[:40]!r}", number, source)
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text[0] == "[":
        if not text.endswith("]"):
            _refuse(f"unterminated flow list {text[:40]!r}", number, source)
        inner = text[1:-1].strip()
        return [_scalar(part, number, source) for part in inner.split(",")] if inner else []
    if text[0] == "{":
        _refuse("flow mappings are not read", number, source)
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def loads(text: str, source="config") -> object:
    """The document as dicts, lists and strings (every scalar a string, an empty value None)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            _refuse("a tab in the indentation", number, source)
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped, number))
    if not lines:
        return None
    value, at = _block(lines, 0, lines[0][0], source, 0)
    if at != len(lines):
        _refuse("indentation does not match the lines above", lines[at][2], source)
    return value


def _block(lines, at: int, indent: int, source, depth: int):
    if depth > MAX_DEPTH:
        _refuse(f"nested deeper than {MAX_DEPTH} levels", lines[at][2], source)
    if lines[at][1].startswith("- ") or lines[at][1] == "-":
        return _sequence(lines, at, indent, source, depth)
    return _mapping(lines, at, indent, source, depth)


def _sequence(lines, at, indent, source, depth):
    items = []
    while at < len(lines) and lines[at][0] == indent and (lines[at][1].startswith("- ") or lines[at][1] == "-"):
        _, text, number = lines[at]
        rest = text[1:].strip()
        if not rest:                                   # "-" then an indented block
            at += 1
            if at < len(lines) and lines[at][0] > indent:
                value, at = _block(lines, at, lines[at][0], source, depth + 1)
            else:
                value = None
            items.append(value)
            continue
        if _KEY.match(rest):                           # "- key: value" starts a mapping item
            inner = indent + (len(text) - len(rest))
            lines[at] = (inner, rest, number)
            value, at = _mapping(lines, at, inner, source, depth + 1)
            items.append(value)
            continue
        items.append(_scalar(rest, number, source))
        at += 1
    return items, at


def _mapping(lines, at, indent, source, depth):
    mapping: dict = {}
    while at < len(lines) and lines[at][0] == indent:
        _, text, number = lines[at]
        match = _KEY.match(text)
        if not match or text.startswith("- "):
            _refuse(f"expected `key: value`, got {text[:60]!r}", number, source)
        key = _scalar(match.group(1), number, source)
        if key in mapping:
            _refuse(f"key {key!r} given twice", number, source)
        rest = text[match.end():].strip()
        at += 1
        if rest:
            mapping[key] = _scalar(rest, number, source)
        elif at < len(lines) and (lines[at][0] > indent or
                                  (lines[at][0] == indent and lines[at][1].startswith("- "))):
            mapping[key], at = _block(lines, at, lines[at][0], source, depth + 1)
        else:
            mapping[key] = None
    return mapping, at
