"""Kernel specs: `kernels/<name>/kernel.toml` loaded, validated and merged with its template family.

The schema is documented key by key in docs/spec.md. Every validation error names the file and the key
(`kernels/x/kernel.toml: kernel.inputs[1].format: ...`). Unknown keys are errors, except inside
[reference] (interpreted by the harness) and [kernel.params] (interpreted by the template).
A family's defaults (work sizes, implicit shape scalars, template parameters) come from
`templates/<family>/family.toml`, so families are data, not branches in this module.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelkit.facts.tensor_formats import TENSOR_FORMATS
from kernelkit.core.errors import KernelkitError
from kernelkit.core import limits
from kernelkit.core.fsutil import named_file, read_input
from kernelkit.core.paths import TEMPLATES_DIR

MAX_SPEC_BYTES = 1024 * 1024   # a kernel.toml or family.toml; far above any real one

SPEC_FILE = "kernel.toml"
FAMILY_FILE = "family.toml"
CUSTOM_FAMILY = "custom"
DTYPES = ("f16", "i32")
SCALAR_TYPES = ("int", "float")
BUFFER_TYPES = ("input_buffer", "output_buffer")
VALUE_MODES = ("uniform", "edges")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHAPE_SOURCE = re.compile(r"([IO])\.([BFYXbfyx])\Z")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_DIM = re.compile(r"(input|output),(\d+)\Z")
_OP_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# OpenCL C keywords and types an argument may not be named after.
_RESERVED = frozenset("""auto break case char const continue default do double else enum extern float for goto half
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while bool uchar ushort uint ulong size_t kernel global local constant private read_only write_only""".split())


@dataclass
class TensorSpec:
    """An IR input or the output: the kernel argument `name` (a `__global` pointer)."""

    name: str
    port: int
    dtype: str = "f16"
    format: str = "BFYX"

    @property
    def c_type(self) -> str:
        return "half" if self.dtype == "f16" else "int"


@dataclass
class ScalarSpec:
    """A 32-bit kernel argument bound by `<Scalar>` (MYRIAD) and a macro (GPU).

    source: a layer attribute name, `I.X`-style shape lookup, or a numeric literal.
    port:   element index into a comma-list attribute, or the port of a shape lookup.
    default: value of the GPU `<Define>` when the attribute is absent.
    """

    name: str
    type: str
    source: str
    port: int | None = None
    default: str | None = None
    implicit: bool = False            # added by the family (shape scalars the template needs)

    @property
    def kind(self) -> str:
        return scalar_kind(self.source)


@dataclass
class WorkSpec:
    dim: str                          # "input,K" or "output,K"
    global_: list[str]
    local: list[str]


@dataclass
class BufferSpec:
    """An inter-stage scratch buffer in DDR (`input_buffer`/`output_buffer` linked by `id`)."""

    name: str
    type: str
    id: int
    dim: str
    size: str                         # bytes, a size expression
    dtype: str = "f32"

    @property
    def c_type(self) -> str:
        return {"f16": "half", "f32": "float", "i32": "int"}[self.dtype]


@dataclass
class StageSpec:
    index: int
    entry: str
    args: list[str]                   # kernel argument names in signature order
    work: WorkSpec
    max_shaves: int = 0
    buffers: list[BufferSpec] = field(default_factory=list)


@dataclass
class Alternative:
    """One more MYRIAD <CustomLayer> for the same op, chosen by the plugin through `<Where>`."""

    where: dict[str, str]
    scalars: dict[str, str] = field(default_factory=dict)    # scalar name -> source override
    formats: dict[str, str] = field(default_factory=dict)    # input/output name -> format override
    global_: list[str] | None = None
    local: list[str] | None = None
    max_shaves: int | None = None


@dataclass
class Case:
    name: str
    shapes: list[tuple[int, ...]]
    dtypes: list[str]
    attrs: dict = field(default_factory=dict)
    low: float = -1.0
    high: float = 1.0
    values: str = "uniform"
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None
    output_shape: tuple[int, ...] | None = None
    fixed: dict[int, Any] = field(default_factory=dict)   # input index -> exact value (number or nested list)
    not_compared: dict[str, str] = field(default_factory=dict)   # reference -> why it is no ground truth here


@dataclass
class KernelSpec:
    name: str
    op: str
    family: str
    dir: Path
    path: Path
    entry: str
    description: str
    template: str                      # template name as the Jinja loader sees it
    inputs: list[TensorSpec]
    output: TensorSpec
    scalars: list[ScalarSpec]
    stages: list[StageSpec]
    alternatives: list[Alternative]
    params: dict[str, Any]
    reference: dict[str, Any]
    cases: list[Case]
    family_dir: Path | None = None
    ranks: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])   # ranks of input 0 computed right

    @property
    def max_shaves(self) -> int:
        return self.stages[0].max_shaves

    @property
    def work(self) -> WorkSpec:
        return self.stages[0].work

    def scalar(self, name: str) -> ScalarSpec | None:
        return next((s for s in self.scalars if s.name == name), None)

    def tensor(self, name: str) -> TensorSpec | None:
        return next((t for t in [*self.inputs, self.output] if t.name == name), None)

    def buffer(self, name: str) -> BufferSpec | None:
        return next((b for st in self.stages for b in st.buffers if b.name == name), None)


def scalar_kind(source: str) -> str:
    """'shape' (I.X / O.F), 'literal' (a number) or 'attribute' (a layer attribute name)."""
    if _SHAPE_SOURCE.match(source):
        return "shape"
    if _NUMBER.match(source):
        return "literal"
    return "attribute"


# --- validation helpers ----------------------------------------------------------------------------

class _Reader:
    """Walks one TOML table, recording which keys were read so leftovers are reported as unknown."""

    def __init__(self, table: dict, key: str, path: Path):
        self.table, self.key, self.path = table, key, path
        self.seen: set[str] = set()

    def error(self, message: str, key: str | None = None, hint: str | None = None) -> KernelkitError:
        where = self.key if key is None else (f"{self.key}.{key}" if self.key else key)
        return KernelkitError(message, path=self.path, where=where or None, hint=hint)

    def get(self, key: str, kind, default=..., *, choices=None):
        self.seen.add(key)
        if key not in self.table:
            if default is ...:
                raise self.error("is required", key)
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python; never accept one for a number.
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(f"must be {_kind_name(kinds)}, not a boolean", key)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:            # TOML integers have no size limit in tomllib
                raise self.error(f"{value} is too large for a number", key) from None
        if not isinstance(value, kinds):
            raise self.error(f"must be {_kind_name(kinds)}, not {_type_name(value)}", key)
        if choices is not None and value not in choices:
            raise self.error(f"{value!r} is not one of {', '.join(map(str, choices))}", key)
        return value

    def table_at(self, key: str, required: bool = False) -> "_Reader | None":
        value = self.get(key, dict, ... if required else None)
        if value is None:
            return None
        return _Reader(value, f"{self.key}.{key}" if self.key else key, self.path)

    def list_of_tables(self, key: str) -> list["_Reader"]:
        items = self.get(key, list, [])
        readers = []
        for i, item in enumerate(items):
            where = f"{self.key}.{key}[{i}]" if self.key else f"{key}[{i}]"
            if not isinstance(item, dict):
                raise KernelkitError(f"must be a table, not {_type_name(item)}", path=self.path, where=where)
            readers.append(_Reader(item, where, self.path))
        return readers

    def done(self, allowed_hint: str | None = None) -> None:
        extra = [k for k in self.table if k not in self.seen]
        if extra:
            known = ", ".join(sorted(self.seen))
            raise self.error(f"unknown key {extra[0]!r}", extra[0],
                             hint=allowed_hint or (f"known keys here: {known}" if known else None))


def _kind_name(kinds) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
             dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _type_name(value) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _identifier(reader: _Reader, key: str, default=...) -> str:
    value = reader.get(key, str, default)
    if value is None:
        return value
    if not _IDENT.match(value):
        raise reader.error(f"{value!r} is not a C identifier (letters, digits, _; not starting with a digit)", key)
    return value


def _arg_name(reader: _Reader, key: str) -> str:
    value = _identifier(reader, key)
    if value in _RESERVED:
        raise reader.error(f"{value!r} is an OpenCL C keyword or type; choose another argument name", key)
    return value


def _expr_list(reader: _Reader, key: str, default=...) -> list[str] | None:
    from kernelkit.kernel.bindings import expr

    value = reader.get(key, list, default)
    if value is None:
        return None
    if not 1 <= len(value) <= 3:
        raise reader.error(f"needs 1 to 3 expressions (one per work dimension), not {len(value)}", key)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise reader.error(f"must be an expression string or an integer, not {_type_name(item)}", f"{key}[{i}]")
        text = str(item).strip()
        if not text:
            raise reader.error("is empty", f"{key}[{i}]")
        try:
            expr.parse(text)
        except KernelkitError as exc:
            raise reader.error(f"bad size expression {text!r}: {exc.message}", f"{key}[{i}]",
                               hint="use B, F, Y, X, numeric layer attributes, + - * / %, parentheses, "
                                    "floor/ceil/round/abs/sqrt; there is no unary minus") from None
        out.append(text)
    return out


def _dim(reader: _Reader, key: str, default=...) -> str | None:
    value = reader.get(key, str, default)
    if value is None:
        return None
    text = value.replace(" ", "").lower()
    if not _DIM.match(text):
        raise reader.error(f"{value!r} must be 'input,K' or 'output,K' with an explicit index", key)
    return text


def _non_negative_int(reader: _Reader, key: str, default=...) -> int | None:
    value = reader.get(key, int, default)
    if value is not None and value < 0:
        raise reader.error("must not be negative", key)
    return value


# --- families ----------------------------------------------------------------------------------------

@dataclass
class Family:
    name: str
    dir: Path
    template: str
    description: str
    work: WorkSpec | None
    scalars: list[ScalarSpec]
    params: dict[str, Any]
    required_params: list[str]
    min_inputs: int
    max_inputs: int
    reserved_names: list[str] = field(default_factory=list)
    ranks: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    # A template parameter naming the one input rank a kernel is built for (the plugin never tells a kernel
    # the rank, and some families cannot infer it); with it, `ranks` lists the values it may take.
    rank_param: str | None = None
    rank_inputs: dict[int, list[int]] = field(default_factory=dict)   # rank_param value -> input ranks taken
    scalar_min_rank: dict[str, int] = field(default_factory=dict)   # implicit scalar -> lowest rank it exists for
    work_by_rank: dict[int, WorkSpec] = field(default_factory=dict)  # rank_param value -> its own work sizes
    default_format: str = "BFYX"     # the binding format of tensors whose spec gives none
    format_by_rank: dict[int, str] = field(default_factory=dict)   # rank_param value -> that default instead


_LET_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")


def _expand_lets(reader: _Reader, lets: dict) -> dict[str, str]:
    """`[work.let]`: named sub-expressions, each substituted (parenthesised) into later ones and the sizes."""
    out: dict[str, str] = {}
    for name, text in lets.items():
        if not _LET_NAME.match(name) or name in ("B", "F", "Y", "X"):
            raise reader.error(f"{name!r}: use an upper-case name other than B, F, Y, X", f"let.{name}")
        if not isinstance(text, str) or not text.strip():
            raise reader.error("must be a non-empty expression string", f"let.{name}")
        out[name] = _substitute(text, out)
    return out


def _substitute(text: str, lets: dict[str, str]) -> str:
    if not lets:
        return text
    if text.strip() in lets:
        return lets[text.strip()]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, lets)) + r")\b")
    return pattern.sub(lambda m: f"({lets[m.group(1)]})", text)


def _family_work(reader: _Reader, lets: dict[str, str], base: WorkSpec | None) -> WorkSpec:
    sizes = {}
    for key in ("global", "local"):
        raw = reader.table.get(key)
        if isinstance(raw, list):
            reader.table[key] = [_substitute(v, lets) if isinstance(v, str) else v for v in raw]
        sizes[key] = _expr_list(reader, key, base.global_ if base and key == "global" else
                                base.local if base else ...)
    dim = _dim(reader, "dim", base.dim if base else ...)
    if base is not None:
        reader.done()
    return WorkSpec(dim, sizes["global"], sizes["local"])


def list_families() -> list[str]:
    return sorted(p.parent.name for p in TEMPLATES_DIR.glob(f"*/{FAMILY_FILE}"))


def load_family(name: str) -> Family:
    path = named_file(TEMPLATES_DIR, f"{name}/{FAMILY_FILE}", source=None, where="kernel.family",
                      what="template family", missing_ok=True)
    if path is None:
        raise KernelkitError(f"unknown template family {name!r}", where="kernel.family",
                             hint=f"use one of: {', '.join(list_families() + [CUSTOM_FAMILY])}")
    folder = path.parent
    data = _read_toml(path)
    root = _Reader(data, "", path)
    fam = root.table_at("family", required=True)
    template = fam.get("template", str, "kernel.cl.j2")
    description = fam.get("description", str, "")
    min_inputs = fam.get("min_inputs", int, 1)
    max_inputs = fam.get("max_inputs", int, 8)
    required = fam.get("required_params", list, [])
    reserved = fam.get("reserved_names", list, [])
    ranks = fam.get("ranks", list, [0, 1, 2, 3, 4, 5])
    rank_param = fam.get("rank_param", str, None)
    default_format = fam.get("default_format", str, "BFYX").upper()
    if default_format not in TENSOR_FORMATS:
        raise fam.error(f"{default_format!r} is not one of {', '.join(TENSOR_FORMATS)}", "default_format")
    format_by_rank = {}
    for key, value in fam.get("format_by_rank", dict, {}).items():
        if not key.isdigit() or not isinstance(value, str) or value.upper() not in TENSOR_FORMATS:
            raise fam.error(f"maps a rank to one of {', '.join(TENSOR_FORMATS)}, e.g. {{ 3 = \"FYX\" }}",
                            f"format_by_rank.{key}")
        format_by_rank[int(key)] = value.upper()
    rank_inputs = {}
    for key, value in fam.get("rank_inputs", dict, {}).items():
        if not (key.isdigit() and isinstance(value, list) and all(isinstance(v, int) for v in value)):
            raise fam.error("maps a rank to the list of input ranks it takes, e.g. { 4 = [3, 4] }",
                            f"rank_inputs.{key}")
        rank_inputs[int(key)] = list(value)
    if rank_param is not None:
        ranks = sorted(rank_inputs)
    fam.done()
    work = None
    work_by_rank: dict[int, WorkSpec] = {}
    work_reader = root.table_at("work")
    if work_reader:
        lets = _expand_lets(work_reader, work_reader.get("let", dict, {}))
        work = _family_work(work_reader, lets, None)
        # [work.ranks.N]: other sizes for kernels built for rank N (rank_param)
        by_rank = work_reader.table_at("ranks")
        if by_rank:
            for key in list(by_rank.table):
                if not key.isdigit():
                    raise by_rank.error("must be a rank number", key)
                work_by_rank[int(key)] = _family_work(by_rank.table_at(key, required=True), lets, work)
        work_reader.done()
    scalars, min_ranks = [], {}
    for r in root.list_of_tables("scalars"):
        min_rank = r.get("min_rank", int, None)
        r.table = {k: v for k, v in r.table.items() if k != "min_rank"}
        scalar = _scalar(r, implicit=True)
        if min_rank is not None:
            min_ranks[scalar.name] = min_rank
        scalars.append(scalar)
    params = root.get("params", dict, {})
    root.done()
    if rank_param is not None and rank_param not in params:
        raise KernelkitError(f"rank_param {rank_param!r} needs a default under [params]", path=path,
                             where="family.rank_param")
    return Family(name, folder, f"{name}/{template}", description, work, scalars, dict(params), list(required),
                  min_inputs, max_inputs, list(reserved), list(ranks), rank_param, rank_inputs, min_ranks,
                  work_by_rank, default_format, format_by_rank)


# --- the spec ----------------------------------------------------------------------------------------

def _read_toml(path: Path) -> dict:
    raw = read_input(path, MAX_SPEC_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KernelkitError("is not UTF-8 text", path=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) if match else message
        raise KernelkitError(f"malformed TOML: {message}", path=path, line=line,
                             hint="see docs/spec.md for the format") from None


def load_spec(kernel_dir: str | Path) -> KernelSpec:
    """Read and validate `kernel_dir/kernel.toml` (a kernel.toml path is accepted too)."""
    kernel_dir = Path(kernel_dir)
    if kernel_dir.is_file() and kernel_dir.name == SPEC_FILE:
        kernel_dir = kernel_dir.parent
    path = kernel_dir / SPEC_FILE
    if not kernel_dir.is_dir():
        raise KernelkitError("kernel folder not found", path=kernel_dir,
                             hint=f"pass a folder that holds a {SPEC_FILE}")
    if not path.is_file():
        raise KernelkitError(f"no {SPEC_FILE} in this folder", path=kernel_dir,
                             hint="create one with `kernelkit new`")
    return parse_spec(_read_toml(path), path)


def parse_spec(data: dict, path: Path) -> KernelSpec:
    root = _Reader(data, "", path)
    k = root.table_at("kernel", required=True)
    name = _identifier(k, "name")
    op = k.get("op", str)
    if not _OP_TYPE.match(op):
        raise k.error(f"{op!r} is not a usable layer type", "op",
                      hint="an IR type name: letters, digits, '_', '.', '-', starting with a letter or '_'")
    family_name = k.get("family", str)
    if family_name != CUSTOM_FAMILY and not _IDENT.match(family_name):
        raise k.error(f"{family_name!r} is not a family name", "family",
                      hint=f"use one of: {', '.join(list_families() + [CUSTOM_FAMILY])}")
    description = k.get("description", str, "")
    if "*/" in description or "\n" in description:
        raise k.error("must be one line without '*/' (it goes into a C comment)", "description")
    entry = _identifier(k, "entry", name)
    max_shaves = _non_negative_int(k, "max_shaves", 0)

    family: Family | None = None
    if family_name == CUSTOM_FAMILY:
        template = k.get("template", str, ...)
        if named_file(path.parent, template, source=path, where="kernel.template", what="template file",
                      missing_ok=True) is None:
            raise k.error(f"template file {template!r} not found next to the spec", "template")
        template_name = f"kernel/{template}"
    else:
        try:
            family = load_family(family_name)
        except KernelkitError as exc:
            if exc.path is None:
                raise KernelkitError(exc.message, path=path, where="kernel.family", hint=exc.hint) from None
            raise
        if "template" in k.table:
            raise k.error("only the 'custom' family takes a template file", "template",
                          hint="set family = \"custom\" or remove the key")
        template_name = family.template

    inputs = []
    for i, r in enumerate(k.list_of_tables("inputs")):
        inputs.append(_tensor(r, i))
        r.done()
    if not inputs:
        raise k.error("at least one input is required", "inputs", hint="add a [[kernel.inputs]] table")
    if family and not family.min_inputs <= len(inputs) <= family.max_inputs:
        raise k.error(f"the {family.name} family takes {family.min_inputs} to {family.max_inputs} inputs, "
                      f"not {len(inputs)}", "inputs")
    out_reader = k.table_at("output", required=True)
    output = _tensor(out_reader, 0)
    out_reader.done()

    scalars = []
    for r in k.list_of_tables("scalars"):
        scalars.append(_scalar(r))
    if family:
        user_names = {s.name for s in scalars}
        scalars = [s for s in family.scalars if s.name not in user_names] + scalars

    names: dict[str, str] = {}
    for i, t in enumerate(inputs):
        _unique(names, t.name, f"kernel.inputs[{i}].name", path)
    _unique(names, output.name, "kernel.output.name", path)
    for s in scalars:
        if s.implicit:
            _unique(names, s.name, f"(scalar {s.name} of the {family_name} family)", path)
    for i, s in enumerate(x for x in scalars if not x.implicit):
        _unique(names, s.name, f"kernel.scalars[{i}].name", path)
    if family:
        for arg, where in names.items():
            if arg in family.reserved_names:
                raise KernelkitError(f"{arg!r} is a name the {family.name} template uses for itself",
                                     path=path, where=where.split(" ")[0] if where.startswith("kernel.") else where,
                                     hint="rename the argument")
    for s in scalars:
        if s.kind == "shape":
            ports = len(inputs) if s.source[0] == "I" else 1
            if s.port is None or s.port >= ports:
                raise KernelkitError(f"shape lookup {s.source} needs `port` = an existing "
                                     f"{'input' if s.source[0] == 'I' else 'output'} index (0..{ports - 1})",
                                     path=path, where=f"scalar {s.name}")

    params = dict(family.params) if family else {}
    user_params = k.get("params", dict, {})
    params.update(user_params)
    if family:
        missing = [p for p in family.required_params if p not in params]
        if missing:
            raise k.error(f"the {family.name} family needs template parameter {missing[0]!r}", "params",
                          hint=f"add it under [kernel.params]; see templates/{family.name}/family.toml")

    ranks = list(family.ranks) if family else [0, 1, 2, 3, 4, 5]
    if family and family.rank_param:
        rank = params[family.rank_param]
        if isinstance(rank, bool) or not isinstance(rank, int) or rank not in family.ranks:
            raise k.error(f"{family.rank_param} = {rank!r}: the {family.name} family is built for one input rank, "
                          f"one of {', '.join(map(str, family.ranks))}", f"params.{family.rank_param}",
                          hint="the plugin never tells a kernel the rank of its input; give it here")
        ranks = family.rank_inputs.get(rank, [rank])
        scalars = [s for s in scalars if not s.implicit or family.scalar_min_rank.get(s.name, 0) <= rank]

    default_format = "BFYX"
    if family:
        default_format = family.default_format
        if family.rank_param:
            default_format = family.format_by_rank.get(params[family.rank_param], default_format)
    for tensor in inputs + [output]:
        tensor.format = tensor.format or default_format

    work_reader = k.table_at("work")
    default_work = family.work if family else None
    if family and family.rank_param:
        default_work = family.work_by_rank.get(params[family.rank_param], default_work)
    stages_readers = k.list_of_tables("stages")
    if stages_readers:
        if work_reader:
            raise k.error("give work sizes either in [kernel.work] or per stage, not both", "work")
        stages = [_stage(r, i, names, path) for i, r in enumerate(stages_readers)]
        if family:
            raise k.error("only the 'custom' family supports several stages", "stages")
        if "entry" in k.table and entry != stages[0].entry:
            raise k.error("with stages, each stage names its own entry", "entry")
        entry = stages[0].entry
    else:
        if work_reader:
            work = WorkSpec(_dim(work_reader, "dim", default_work.dim if default_work else ...),
                            _expr_list(work_reader, "global", default_work.global_ if default_work else ...),
                            _expr_list(work_reader, "local", default_work.local if default_work else ...))
            work_reader.done()
        elif default_work:
            work = WorkSpec(default_work.dim, list(default_work.global_), list(default_work.local))
        else:
            raise k.error("is required for the custom family", "work",
                          hint="add [kernel.work] with dim, global and local")
        args = [t.name for t in inputs] + [output.name] + [s.name for s in scalars]
        stages = [StageSpec(0, entry, args, work, max_shaves)]
    for st in stages:
        _check_work(st.work, len(inputs), path, f"stage {st.index}" if len(stages) > 1 else "kernel.work")

    alternatives = []
    for i, r in enumerate(k.list_of_tables("alternatives")):
        alternatives.append(_alternative(r, scalars, [*inputs, output], len(stages)))
        r.done()

    k.done()
    reference = root.get("reference", dict, {})
    _check_reference(reference, path, inputs)
    cases = [_case(r, inputs) for r in root.list_of_tables("cases")]
    seen_cases: set[str] = set()
    for i, c in enumerate(cases):
        if family and len(c.shapes[0]) not in ranks:
            built_for = (f"kernel is built for rank {params[family.rank_param]} ([kernel.params] "
                         f"{family.rank_param}), which takes rank(s) {', '.join(map(str, ranks))}"
                         if family.rank_param else f"handles ranks {', '.join(map(str, ranks))}")
            raise KernelkitError(f"input 0 has rank {len(c.shapes[0])}, but the {family.name} family {built_for}",
                                 path=path, where=f"cases[{i}].shapes[0]",
                                 hint=_RANK_HINTS.get(len(c.shapes[0]),
                                                      f"build a kernel for that rank ([kernel.params] "
                                                      f"{family.rank_param} = {len(c.shapes[0])})"
                                                      if family.rank_param and len(c.shapes[0]) in family.ranks
                                                      else "reshape the tensor"))
        if c.name in seen_cases:
            raise KernelkitError(f"case name {c.name!r} is used twice", path=path, where=f"cases[{i}].name")
        seen_cases.add(c.name)
    root.done()
    return KernelSpec(name=name, op=op, family=family_name, dir=path.parent.resolve(), path=path.resolve(),
                      entry=entry, description=description, template=template_name, inputs=inputs, output=output,
                      scalars=scalars, stages=stages, alternatives=alternatives, params=params,
                      reference=reference, cases=cases, family_dir=family.dir if family else None,
                      ranks=ranks)


_RANK_HINTS = {
    5: "the plugin's B/F/Y/X view of a rank-5 tensor drops D and its shape lookups stop at rank 4, so no binding "
       "can see the whole shape; reshape to rank 4 (merge D into C or H) around the layer",
}


def _unique(names: dict, name: str, where: str, path: Path) -> None:
    if name in names:
        raise KernelkitError(f"argument name {name!r} is already used by {names[name]}", path=path, where=where,
                             hint="every input, output, scalar and buffer needs its own name")
    names[name] = where


def _tensor(r: _Reader, index: int) -> TensorSpec:
    """A kernel input or output; format "" until the family's default is known (_default_formats)."""
    name = _arg_name(r, "name")
    dtype = r.get("dtype", str, "f16", choices=DTYPES)
    fmt = r.get("format", str, "").upper()
    if fmt and fmt not in TENSOR_FORMATS:
        raise r.error(f"{fmt!r} is not one of {', '.join(TENSOR_FORMATS)}", "format")
    return TensorSpec(name=name, port=index, dtype=dtype, format=fmt)


def _scalar(r: _Reader, implicit: bool = False) -> ScalarSpec:
    name = _arg_name(r, "name")
    stype = r.get("type", str, choices=SCALAR_TYPES)
    source = r.get("source", (str, int, float))
    if isinstance(source, (int, float)):
        source = repr(source)
    source = source.strip()
    if not source:
        raise r.error("is empty", "source")
    kind = scalar_kind(source)
    if kind == "attribute" and not _IDENT.match(source):
        raise r.error(f"{source!r} is neither a layer attribute name, a shape lookup (I.X, O.F...) nor a number",
                      "source")
    port = _non_negative_int(r, "port", None)
    if kind == "literal" and port is not None:
        raise r.error("a literal source takes no port", "port")
    if kind == "literal" and stype == "int" and not re.fullmatch(r"[+-]?\d+", source):
        raise r.error(f"an int scalar needs an integer literal, not {source!r}", "source")
    default = r.get("default", (str, int, float), None)
    if default is not None:
        default = str(default)
    r.done()
    return ScalarSpec(name=name, type=stype, source=source, port=port, default=default, implicit=implicit)


def _check_work(work: WorkSpec, n_inputs: int, path: Path, where: str) -> None:
    kind, index = work.dim.split(",")
    if kind == "input" and int(index) >= n_inputs:
        raise KernelkitError(f"dim {work.dim!r} names input {index}, but the kernel has {n_inputs} input(s)",
                             path=path, where=f"{where}.dim")
    if kind == "output" and int(index) != 0:
        raise KernelkitError("a custom layer has exactly one output: use 'output,0'", path=path,
                             where=f"{where}.dim")
    if len(work.global_) != len(work.local):
        raise KernelkitError(f"global has {len(work.global_)} dimension(s) but local has {len(work.local)}",
                             path=path, where=f"{where}.local", hint="give one local size per global size")


def _stage(r: _Reader, index: int, names: dict, path: Path) -> StageSpec:
    entry = _identifier(r, "entry")
    stage_index = r.get("stage", int, index)
    if stage_index != index:
        raise r.error(f"stages must be listed in order 0, 1, ...; expected {index}", "stage")
    buffers = []
    for br in r.list_of_tables("buffers"):
        bname = _arg_name(br, "name")
        btype = br.get("type", str, choices=BUFFER_TYPES)
        bid = _non_negative_int(br, "id")
        bdim = _dim(br, "dim")
        size_text = br.get("size", (str, int))
        bdtype = br.get("dtype", str, "f32", choices=("f16", "f32", "i32"))
        from kernelkit.kernel.bindings import expr
        try:
            expr.parse(str(size_text))
        except KernelkitError as exc:
            raise br.error(f"bad size expression: {exc.message}", "size") from None
        br.done()
        buffers.append(BufferSpec(bname, btype, bid, bdim, str(size_text), bdtype))
    args = r.get("args", list)
    buffer_names = {b.name for b in buffers}
    for i, a in enumerate(args):
        if not isinstance(a, str) or (a not in names and a not in buffer_names):
            raise r.error(f"{a!r} is not an input, output, scalar or buffer of this stage", f"args[{i}]")
    if len(set(args)) != len(args):
        raise r.error("names an argument twice", "args")
    work = WorkSpec(_dim(r, "dim"), _expr_list(r, "global"), _expr_list(r, "local"))
    max_shaves = _non_negative_int(r, "max_shaves", 0)
    r.done()
    return StageSpec(index, entry, list(args), work, max_shaves, buffers)


def _alternative(r: _Reader, scalars: list[ScalarSpec], tensors: list[TensorSpec], n_stages: int) -> Alternative:
    where = r.get("where", dict, {})
    where_out = {}
    for key, value in where.items():
        if not _IDENT.match(key):
            raise r.error(f"{key!r} is not an attribute name", f"where.{key}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)) or str(value).strip() == "":
            raise r.error("must be a non-empty string or number (e.g. \">=2\", \"3,3\", 1)", f"where.{key}")
        where_out[key] = str(value)
    overrides = r.get("scalars", dict, {})
    by_name = {s.name: s for s in scalars}
    scalar_out = {}
    for key, value in overrides.items():
        if key not in by_name:
            raise r.error(f"{key!r} is not a scalar of this kernel", f"scalars.{key}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise r.error("must be a source: attribute name, shape lookup or number", f"scalars.{key}")
        text = str(value).strip()
        if scalar_kind(text) == "literal" and by_name[key].type == "int" and not re.fullmatch(r"[+-]?\d+", text):
            raise r.error(f"an int scalar needs an integer literal, not {text!r}", f"scalars.{key}")
        if scalar_kind(text) == "attribute" and not _IDENT.match(text):
            raise r.error(f"{text!r} is not a usable source", f"scalars.{key}")
        scalar_out[key] = text
    formats = r.get("formats", dict, {})
    tensor_names = {t.name for t in tensors}
    formats_out = {}
    for key, value in formats.items():
        if key not in tensor_names:
            raise r.error(f"{key!r} is not an input or the output", f"formats.{key}")
        if not isinstance(value, str) or value.upper() not in TENSOR_FORMATS:
            raise r.error(f"must be one of {', '.join(TENSOR_FORMATS)}", f"formats.{key}")
        formats_out[key] = value.upper()
    global_ = _expr_list(r, "global", None)
    local = _expr_list(r, "local", None)
    if n_stages > 1 and (global_ or local):
        raise r.error("work-size overrides are only for single-stage kernels", "global")
    max_shaves = _non_negative_int(r, "max_shaves", None)
    if not where_out and not scalar_out and not formats_out and global_ is None and local is None:
        raise r.error("an alternative needs at least a `where`, `scalars`, `formats` or work-size override")
    return Alternative(where_out, scalar_out, formats_out, global_, local, max_shaves)


def _check_reference(reference: dict, path: Path, inputs: list[TensorSpec]) -> None:
    for key in ("numpy", "module"):
        if key in reference and not isinstance(reference[key], str):
            raise KernelkitError(f"must be a string, not {_type_name(reference[key])}", path=path,
                                 where=f"reference.{key}")
    if "numpy" in reference and "module" in reference:
        raise KernelkitError("give either `numpy` or `module`, not both", path=path, where="reference")
    if "numpy" in reference:
        try:
            compile(reference["numpy"], str(path), "eval")
        except SyntaxError as exc:
            raise KernelkitError(f"not a Python expression: {exc.msg}", path=path, where="reference.numpy") from None
    if "module" in reference and named_file(path.parent, reference["module"], source=path, where="reference.module",
                                            what="reference module", missing_ok=True) is None:
        raise KernelkitError(f"{reference['module']!r} not found next to the spec", path=path,
                             where="reference.module")
    for key in ("onnx", "openvino"):
        if key in reference:
            value = reference[key]
            if not isinstance(value, dict) or not isinstance(value.get("op"), str):
                raise KernelkitError("must be a table with a string `op`", path=path, where=f"reference.{key}",
                                     hint=f'e.g. {key} = {{ op = "Mish" }}')
    if "openvino" in reference and "opset" in reference["openvino"]:
        if not isinstance(reference["openvino"]["opset"], str):
            raise KernelkitError("must be a string like \"opset4\"", path=path, where="reference.openvino.opset")


def _shape(r: _Reader, key: str, value) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise r.error("must be an array of integers", key)
    if not 0 <= len(value) <= 5 or any(d < 1 for d in value):
        raise r.error(f"{value} is not a static shape of rank 0..5 with positive dimensions", key)
    return tuple(value)


def _nested_numbers(value) -> bool:
    if isinstance(value, list):
        return all(_nested_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The references the harness compares a spec case with (kernelkit.harness.conformance), by the names it reports.
CASE_REFERENCES = ("numpy", "emulator-fp32", "openvino")


def _case(r: _Reader, inputs: list[TensorSpec]) -> Case:
    n_inputs = len(inputs)
    name = r.get("name", str)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise r.error(f"{name!r}: use letters, digits, '_', '-' and '.' only", "name")
    shapes_raw = r.get("shapes", list)
    if len(shapes_raw) != n_inputs:
        raise r.error(f"gives {len(shapes_raw)} shape(s) for {n_inputs} input(s)", "shapes")
    shapes = [_shape(r, f"shapes[{i}]", s) for i, s in enumerate(shapes_raw)]
    dtypes = r.get("dtypes", list, ["f16"] * n_inputs)
    if len(dtypes) != n_inputs:
        raise r.error(f"gives {len(dtypes)} dtype(s) for {n_inputs} input(s)", "dtypes")
    for i, d in enumerate(dtypes):
        if d not in DTYPES:
            raise r.error(f"{d!r} is not one of {', '.join(DTYPES)}", f"dtypes[{i}]")
    attrs = r.get("attrs", dict, {})
    for key, value in attrs.items():
        ok = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        if not ok:
            raise r.error("must be a string, number, boolean or array of numbers", f"attrs.{key}")
    low = r.get("low", float, -1.0)
    high = r.get("high", float, 1.0)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise r.error(f"low ({low}) must be finite and not above high ({high})", "low")
    values = r.get("values", str, "uniform", choices=VALUE_MODES)
    seed = r.get("seed", int, 0)
    atol = r.get("atol", float, None)
    rtol = r.get("rtol", float, None)
    for key, tol in (("atol", atol), ("rtol", rtol)):
        if tol is not None and not (tol >= 0 and math.isfinite(tol)):
            raise r.error("must be a finite number >= 0", key)
    out_shape = r.get("output_shape", list, None)
    output_shape = _shape(r, "output_shape", out_shape) if out_shape is not None else None
    for key, shape in [*((f"shapes[{i}]", s) for i, s in enumerate(shapes)), ("output_shape", output_shape)]:
        if shape is not None:           # the harness allocates these: refuse absurd ones here
            limits.check_tensor(shape, 4, "the case's tensor", path=r.path, where=f"{r.key}.{key}")
    fixed_raw = r.get("fixed", dict, {})
    fixed = {}
    index_of = {t.name: t.port for t in inputs}
    for key, value in fixed_raw.items():
        if key not in index_of:
            raise r.error(f"{key!r} is not an input of this kernel", f"fixed.{key}",
                          hint=f"inputs: {', '.join(index_of)}")
        if not _nested_numbers(value):
            raise r.error("must be a number or a (nested) array of numbers", f"fixed.{key}")
        fixed[index_of[key]] = value
    not_compared = r.get("not_compared", dict, {})
    for key, why in not_compared.items():
        if key not in CASE_REFERENCES:
            raise r.error(f"{key!r} is not a reference", f"not_compared.{key}",
                          hint=f"references: {', '.join(CASE_REFERENCES)}")
        if not isinstance(why, str) or not why.strip():
            raise r.error("must say why this reference is no ground truth for the case", f"not_compared.{key}")
    r.done()
    return Case(name, shapes, list(dtypes), dict(attrs), low, high, values, seed, atol, rtol, output_shape, fixed,
                dict(not_compared))
