"""Kernel signatures from OpenCL C source: just enough C to find `__kernel` functions and their parameters.

Macros are expanded with `clang-15 -E` when it is installed (the line markers map lines back to the user's
file); otherwise comments are stripped and the raw text is read, so macro-built signatures are not seen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input
from kernelkit.facts.opencl import split_vector

CLANG = "clang-15"
ADDRESS_SPACES = {"__global": "global", "global": "global", "__local": "local", "local": "local",
                  "__constant": "constant", "constant": "constant", "__private": "private", "private": "private"}
_QUALIFIERS = {"const", "restrict", "__restrict", "__restrict__", "volatile", "__read_only", "__write_only",
               "read_only", "write_only", "struct", "union", "enum"}
_INTEGER_SIGN = {"unsigned": "u", "signed": ""}
DMA_PREFIXES = {"__dma_preload_": "preload", "__dma_postwrite_": "postwrite"}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?\d[\w.]*(?:[eEpP][+-]\w*)?)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<punct>\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%=&|^!<>~?:;,.(){}\[\]\#])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


@dataclass
class KernelArg:
    name: str
    address_space: str                 # 'global' | 'local' | 'constant' | 'private'
    base_type: str                     # 'half', 'float', 'int', 'uint', 'half8'...
    pointer: bool
    const: bool
    restrict: bool = False
    array: bool = False                # declared as name[N]
    text: str = ""                     # the parameter as written (after preprocessing)

    @property
    def scalar_type(self) -> str:
        """The element type without a vector width: 'half8' -> 'half'."""
        return split_vector(self.base_type)[0]

    @property
    def vector_width(self) -> int:
        return split_vector(self.base_type)[1]

    def same_signature(self, other: "KernelArg") -> bool:
        return (self.name, self.address_space, self.base_type, self.pointer) == \
            (other.name, other.address_space, other.base_type, other.pointer)


@dataclass
class KernelSignature:
    name: str
    args: list[KernelArg]
    attributes: dict[str, object] = field(default_factory=dict)   # e.g. {'reqd_work_group_size': (1, 1, 1)}
    line: int | None = None            # line of the name in the original source
    has_body: bool = True
    unreadable: list[str] = field(default_factory=list)   # parameters not understood (e.g. macros, no clang)

    @property
    def companion_kind(self) -> str | None:
        """'preload' / 'postwrite' for a manual-DMA companion `__dma_preload_<entry>`, else None."""
        for prefix, kind in DMA_PREFIXES.items():
            if self.name.startswith(prefix) and len(self.name) > len(prefix):
                return kind
        return None

    @property
    def companion_of(self) -> str | None:
        for prefix in DMA_PREFIXES:
            if self.name.startswith(prefix) and len(self.name) > len(prefix):
                return self.name[len(prefix):]
        return None

    def arg(self, name: str) -> KernelArg | None:
        return next((a for a in self.args if a.name == name), None)


def clang_available() -> bool:
    return shutil.which(CLANG) is not None


def preprocess(source: str, defines: Mapping[str, object] | None = None, *, path: str | Path | None = None,
               include_dirs: Sequence[str | Path] = ()) -> tuple[str, list[int | None]] | None:
    """Expand macros with clang-15. Returns the text and, per output line, the line in `source` it came from
    (None for lines from headers); None when clang-15 is not installed."""
    if not clang_available():
        return None
    command = [CLANG, "-E", "-x", "cl", "-cl-std=CL1.2", "-Xclang", "-cl-ext=+cl_khr_fp16"]
    if path is not None:
        command += ["-I", str(Path(path).resolve().parent)]
    command += [f"-I{d}" for d in include_dirs]
    for name, value in (defines or {}).items():
        command.append(f"-D{name}" if value is None else f"-D{name}={value}")
    command.append("-")
    try:
        result = subprocess.run(command, input=source, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelkitError(f"could not run {CLANG} -E: {exc}", path=path) from None
    if result.returncode != 0:
        message = result.stderr.strip().replace("<stdin>", str(path or "<source>"))
        raise KernelkitError(f"the OpenCL source does not preprocess:\n{message}", path=path,
                             hint="fix the #include/#if lines, or pass the defines the source expects")
    lines, origin = [], []
    current: int | None = None
    for text in result.stdout.split("\n"):
        marker = re.match(r'#\s*(\d+)\s+"([^"]*)"', text)
        if marker:
            current = int(marker.group(1)) if marker.group(2) == "<stdin>" else None
            lines.append("")
            origin.append(None)
            continue
        lines.append(text)
        origin.append(current)
        if current is not None:
            current += 1
    return "\n".join(lines), origin


def strip_comments(source: str) -> str:
    """Blank out comments (keeping newlines, so lines do not move) and join continued lines' markers."""
    def blank(match: re.Match) -> str:
        text = match.group(0)
        if text.startswith(("\"", "'")):
            return text
        return re.sub(r"[^\n]", " ", text)

    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?(?:\*/|\Z)', blank, source,
                  flags=re.DOTALL)


@dataclass
class _Tok:
    kind: str
    text: str
    line: int


def _tokens(text: str) -> list[_Tok]:
    out, line = [], 1
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        value = match.group(0)
        if kind != "ws":
            out.append(_Tok(kind, value, line))
        line += value.count("\n")
    return out


def _drop_directives(text: str) -> str:
    """Blank out preprocessor lines (raw mode), keeping the line count."""
    text = re.sub(r"\\\n", "  ", text)
    return re.sub(r"(?m)^[ \t]*#[^\n]*", lambda m: " " * len(m.group(0)), text)


def parse_kernels(source: str, defines: Mapping[str, object] | None = None, *, path: str | Path | None = None,
                  preprocessor: bool = True) -> list[KernelSignature]:
    """Every `__kernel`/`kernel` function defined in `source`, in source order.

    With clang-15 (and `preprocessor`), macros are expanded first using `defines`; lines refer to `source`."""
    # Bindings repeat one source across many <CustomLayer>s (a fuzzed file held 2,000): one clang run each
    # took minutes. The key holds everything the result depends on but the text of #included headers.
    key = (source, tuple(sorted((str(k), str(v)) for k, v in (defines or {}).items())),
           str(path) if path is not None else None, preprocessor)
    cached = _PARSED.get(key)
    if cached is None:
        cached = _parse_kernels(source, defines, path=path, preprocessor=preprocessor)
        if len(_PARSED) >= 64:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = cached
    return list(cached)


_PARSED: dict[tuple, list] = {}


def _parse_kernels(source: str, defines: Mapping[str, object] | None, *, path, preprocessor: bool):
    expanded = preprocess(source, defines, path=path) if preprocessor else None
    if expanded is None:
        text, origin = _drop_directives(strip_comments(source)), None
    else:
        text, origin = expanded
    tokens = _tokens(text)

    def original_line(line: int) -> int | None:
        if origin is None:
            return line
        return origin[line - 1] if 0 < line <= len(origin) else None

    kernels: list[KernelSignature] = []
    depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and tok.kind == "ident" and tok.text in ("__kernel", "kernel"):
            signature, i = _read_kernel(tokens, i, path, original_line)
            if signature is not None:
                kernels.append(signature)
            continue
        i += 1
    # a prototype followed by the definition is one kernel
    defined = {k.name for k in kernels if k.has_body}
    return [k for k in kernels if k.has_body or k.name not in defined]


def _balanced(tokens: list[_Tok], i: int) -> int:
    """Index just past the parenthesis group opening at tokens[i]."""
    depth = 0
    while i < len(tokens):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _attributes(tokens: list[_Tok], into: dict) -> None:
    """Read `__attribute__((name(args), other))` tokens (without the keyword)."""
    inner = tokens[2:-2] if len(tokens) >= 4 else []
    j = 0
    while j < len(inner):
        if inner[j].kind == "ident":
            name = inner[j].text.strip("_") if inner[j].text.startswith("__") else inner[j].text
            if j + 1 < len(inner) and inner[j + 1].text == "(":
                end = _balanced(inner, j + 1)
                into[name] = tuple(_literal(t.text) for t in inner[j + 2:end - 1] if t.text != ",")
                j = end
                continue
            into[name] = True
        j += 1


def _literal(text: str) -> int | str:
    match = re.fullmatch(r"(\d+)[uU]?", text)
    return int(match.group(1)) if match else text


def _read_kernel(tokens, i, path, original_line):
    """Parse one kernel declaration starting at the `__kernel` keyword; returns (signature|None, next index)."""
    attributes: dict[str, object] = {}
    # attributes written before the keyword
    j = i - 1
    while j >= 0 and tokens[j].text not in (";", "}", "{"):
        j -= 1
    k = j + 1
    while k < i:
        if tokens[k].text == "__attribute__" and k + 1 < i:
            end = _balanced(tokens, k + 1)
            _attributes(tokens[k + 1:end], attributes)
            k = end
        else:
            k += 1
    k = i + 1
    name_tok = None
    while k < len(tokens) and tokens[k].text not in (";", "{", "}"):
        if tokens[k].text == "__attribute__":
            end = _balanced(tokens, k + 1)
            _attributes(tokens[k + 1:end], attributes)
            k = end
            continue
        if tokens[k].text == "(":
            break
        if tokens[k].kind == "ident":
            name_tok = tokens[k]
        k += 1
    if k >= len(tokens) or tokens[k].text != "(" or name_tok is None:
        return None, k + 1
    end = _balanced(tokens, k)
    args, unreadable = [], []
    for group in _split_args(tokens[k + 1:end - 1]):
        arg = _read_arg(group)
        if arg is False:
            unreadable.append(" ".join(t.text for t in group))
        elif arg is not None:
            args.append(arg)
    nxt = end
    while nxt < len(tokens) and tokens[nxt].text == "__attribute__":
        after = _balanced(tokens, nxt + 1)
        _attributes(tokens[nxt + 1:after], attributes)
        nxt = after
    has_body = nxt < len(tokens) and tokens[nxt].text == "{"
    return KernelSignature(name=name_tok.text, args=args, attributes=attributes, line=original_line(name_tok.line),
                           has_body=has_body, unreadable=unreadable), nxt


def _split_args(tokens: list[_Tok]) -> list[list[_Tok]]:
    groups, current, depth = [], [], 0
    for tok in tokens:
        if tok.text in "([":
            depth += 1
        elif tok.text in ")]":
            depth -= 1
        if tok.text == "," and depth == 0:
            groups.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        groups.append(current)
    return groups


def _read_arg(tokens: list[_Tok]):
    """A KernelArg; None for `void`; False when the text is not a parameter declaration."""
    words = list(tokens)
    if not words or (len(words) == 1 and words[0].text == "void"):
        return None
    space, const, restrict, pointer, array = "private", False, False, False, False
    type_words, name = [], None
    k = 0
    while k < len(words):
        tok = words[k]
        text = tok.text
        if text == "__attribute__":
            k = _balanced(words, k + 1)
            continue
        if text in ADDRESS_SPACES:
            space = ADDRESS_SPACES[text]
        elif text == "const":
            # `const half *p` is read-only data; `half *const p` only fixes the pointer
            const = const or not pointer
        elif text in ("restrict", "__restrict", "__restrict__"):
            restrict = True
        elif text == "*":
            pointer = True
        elif text == "[":
            array = True
            k = next((m for m in range(k, len(words)) if words[m].text == "]"), len(words) - 1) + 1
            continue
        elif text in _QUALIFIERS:
            pass
        elif tok.kind == "ident":
            type_words.append(text)
        k += 1
    if len(type_words) < 2:
        return False
    name = type_words.pop()
    return KernelArg(name=name, address_space=space, base_type=_base_type(type_words), pointer=pointer or array,
                     const=const, restrict=restrict, array=array, text=" ".join(t.text for t in tokens))


def _base_type(words: list[str]) -> str:
    sign = ""
    rest = []
    for word in words:
        if word in _INTEGER_SIGN:
            sign = _INTEGER_SIGN[word]
        else:
            rest.append(word)
    if not rest:
        rest = ["int"]
    if rest == ["long", "long"]:
        rest = ["long"]
    base = " ".join(rest)
    return sign + base if sign and base in ("char", "short", "int", "long") else base


def entry_points(kernels: Sequence[KernelSignature]) -> list[KernelSignature]:
    """The kernels that are not manual-DMA companions of another kernel in the list."""
    names = {k.name for k in kernels}
    return [k for k in kernels if k.companion_of is None or k.companion_of not in names]


def read_source(path: str | Path, max_bytes: int = 4 * 1024 * 1024) -> str:
    path = Path(path)
    data = read_input(path, max_bytes, what="OpenCL source")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KernelkitError(f"OpenCL source is not UTF-8 text (byte {exc.start})", path=path) from None
