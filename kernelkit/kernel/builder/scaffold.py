"""`kernelkit new`: a kernel folder that builds at once (spec, template for the custom family, one case)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import staged_directory
from kernelkit.kernel.spec import CUSTOM_FAMILY, list_families, parse_spec

_C_TO_NUMPY = {
    "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "asin": "np.arcsin", "acos": "np.arccos",
    "atan": "np.arctan", "sinh": "np.sinh", "cosh": "np.cosh", "tanh": "np.tanh", "exp": "np.exp",
    "exp2": "np.exp2", "expm1": "np.expm1", "log": "np.log", "log2": "np.log2", "log10": "np.log10",
    "log1p": "np.log1p", "sqrt": "np.sqrt", "fabs": "np.abs", "floor": "np.floor", "ceil": "np.ceil",
    "fmin": "np.minimum", "fmax": "np.maximum", "min": "np.minimum", "max": "np.maximum", "pow": "np.power",
    "powr": "np.power", "trunc": "np.trunc",
}
_IDENT = re.compile(r"[A-Za-z_]\w*")


def numpy_from_c(expr: str, names: list[str]) -> str | None:
    """The numpy form of a simple C expression (float suffixes dropped, math functions mapped), or None
    when it uses something without a one-to-one numpy counterpart (ternaries, casts, unknown calls)."""
    if "?" in expr or re.search(r"\(\s*(half|float|int)\s*\)", expr):
        return None
    text = re.sub(r"\b(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?[fFhH]\b", r"\1\2", expr)
    out, pos = [], 0
    for match in _IDENT.finditer(text):
        word = re.sub(r"^(native|half)_", "", match.group(0))
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue   # part of a number like 1e5
        out.append(text[pos:match.start()])
        if word in _C_TO_NUMPY and text[match.end():].lstrip().startswith("("):
            out.append(_C_TO_NUMPY[word])
        elif match.group(0) in names:
            out.append(match.group(0))
        else:
            return None
        pos = match.end()
    out.append(text[pos:])
    result = "".join(out)
    try:
        compile(result, "<expr>", "eval")
    except SyntaxError:
        return None
    return result


def _inputs_of(expr: str) -> list[str]:
    words = set(_IDENT.findall(expr))
    if {"a", "b"} <= words:
        return ["a", "b"]
    return ["x"]


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def spec_text(name: str, family: str, op: str, expr: str | None) -> tuple[str, dict[str, str]]:
    """The kernel.toml text (and any extra files) for a new kernel."""
    header = (f"# {name}: scaffolded by `kernelkit new`; see docs/spec.md for every key.\n"
              f"[kernel]\nname = \"{name}\"\nop = {_toml_string(op)}\nfamily = \"{family}\"\n")
    extra: dict[str, str] = {}
    if family == "elementwise":
        expr = expr or "x"
        inputs = _inputs_of(expr)
        body = "".join(f"\n[[kernel.inputs]]\nname = \"{n}\"\n" for n in inputs)
        body += "\n[kernel.output]\nname = \"y\"\n"
        body += f"\n[kernel.params]\nexpr = {_toml_string(expr)}\n"
        reference = numpy_from_c(expr, inputs)
        shapes = ", ".join("[1, 3, 5, 7]" for _ in inputs)
        ref = (f"\n[reference]\nnumpy = {_toml_string(reference)}\n" if reference else
               "\n[reference]\n# TODO: write the float64 numpy form of the expression, e.g.\n"
               "# numpy = \"np.tanh(x)\"\n")
        case = f"\n[[cases]]\nname = \"basic\"\nshapes = [{shapes}]\nlow = -4.0\nhigh = 4.0\n"
        return header + body + ref + case, extra
    if expr is not None and family != "index_map":
        raise KernelkitError(f"--expr applies to the elementwise and index_map families, not {family}",
                             where="--expr")
    if family == "axis_scan":
        body = ("\n[[kernel.inputs]]\nname = \"x\"\n"
                "\n[[kernel.inputs]]\nname = \"axis\"\ndtype = \"i32\"\nformat = \"ANY\"\n"
                "\n[kernel.output]\nname = \"y\"\n"
                "\n# exclusive/reverse as literals here; see kernels/cumsum for taking them from the layer\n"
                "[[kernel.scalars]]\nname = \"exclusive\"\ntype = \"int\"\nsource = \"0\"\n"
                "\n[[kernel.scalars]]\nname = \"reverse\"\ntype = \"int\"\nsource = \"0\"\n"
                "\n[kernel.params]\ncombine = \"sum\"\naxis_from = \"input\"\n"
                "\n[reference]\nnumpy = \"np.cumsum(x, axis=int(axis.reshape(-1)[0]))\"\n"
                "\n[[cases]]\nname = \"basic\"\nshapes = [[1, 3, 5, 7], []]\ndtypes = [\"f16\", \"i32\"]\n"
                "fixed = { axis = -1 }\n")
        return header + body, extra
    if family == "index_map":
        src_x = expr or "OW - 1 - ox"
        body = ("\n[[kernel.inputs]]\nname = \"x\"\n\n[kernel.output]\nname = \"y\"\n"
                f"\n# source coordinates over the output coordinates ob, of, oy, ox\n"
                f"[kernel.params]\nsrc_x = {_toml_string(src_x)}\n")
        reference = "x[..., ::-1]" if expr is None else None
        ref = (f"\n[reference]\nnumpy = \"{reference}\"\n" if reference else
               "\n[reference]\n# TODO: numpy = \"...\"  (the same mapping in numpy)\n")
        case = "\n[[cases]]\nname = \"basic\"\nshapes = [[1, 3, 5, 7]]\n"
        return header + body + ref + case, extra
    if family == CUSTOM_FAMILY:
        body = ("template = \"kernel.cl.j2\"\n"
                "\n[[kernel.inputs]]\nname = \"x\"\n\n[kernel.output]\nname = \"y\"\n"
                "\n[[kernel.scalars]]\nname = \"W\"\ntype = \"int\"\nsource = \"I.X\"\nport = 0\n"
                "\n# one work group of 8 lanes per row of X\n"
                "[kernel.work]\ndim = \"input,0\"\nglobal = [\"8\", \"Y\", \"F*B\"]\nlocal = [\"8\", \"1\", \"1\"]\n"
                "\n[reference]\nnumpy = \"x\"\n"
                "\n[[cases]]\nname = \"basic\"\nshapes = [[1, 3, 5, 7]]\n")
        extra["kernel.cl.j2"] = CUSTOM_TEMPLATE
        return header + body, extra
    raise KernelkitError(f"unknown family {family!r}", where="--family",
                         hint=f"use one of: {', '.join(list_families() + [CUSTOM_FAMILY])}")


CUSTOM_TEMPLATE = """\
{% import "_skeleton/macros.cl.j2" as kk with context %}
{{ kk.header() }}

/* A row copy to start from: one group of 8 lanes per row; lanes past the end redo the last element. */
{{ kk.signature() }}
{
    const int row = (int)(get_global_id(2) * get_global_size(1) + get_global_id(1));
    const int lane = (int)get_local_id(0);
    const int lanes = (int)get_local_size(0);
    for (int s = 0; s < (W + lanes - 1) / lanes; ++s) {
        const int i = row * W + min(s * lanes + lane, W - 1);
        {{ spec.output.name }}[i] = {{ spec.inputs[0].name }}[i];
    }
}
"""


def new_kernel(name: str, family: str, op: str, directory: str | Path, expr: str | None = None,
               force: bool = False) -> Path:
    """Write `directory/name/` with a kernel.toml (and kernel.cl.j2 for the custom family); returns the folder."""
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise KernelkitError(f"{name!r} is not a C identifier", where="NAME",
                             hint="use letters, digits and _; it names the kernel entry and the output files")
    if family != CUSTOM_FAMILY and family not in list_families():
        raise KernelkitError(f"unknown family {family!r}", where="--family",
                             hint=f"use one of: {', '.join(list_families() + [CUSTOM_FAMILY])}")
    text, extra = spec_text(name, family, op, expr)
    target = Path(directory) / name
    with staged_directory(target, force=force) as stage:
        (stage / "kernel.toml").write_text(text, encoding="utf-8")
        for filename, content in extra.items():
            (stage / filename).write_text(content, encoding="utf-8")
        try:   # refuse to leave a spec that does not load
            parse_spec(tomllib.loads(text), stage / "kernel.toml")
        except KernelkitError as exc:
            raise KernelkitError(exc.message, path=target / "kernel.toml", where=exc.where,
                                 hint="check NAME, --type and --expr") from None
    return target
