"""Native formulation of Einsum-7 for the equations the MYRIAD 2021.4 plugin does not take (it compiles plain
matrix products like "ij,jk->ik"): diagonals by Gather, sums by ReduceSum, products by Transpose, Reshape
and MatMul, on static shapes.

Each operand first loses its repeated labels (the diagonal "ii" -> "i", a Gather of the flattened pair) and
the labels no one else needs (summed away); two operands are then brought to [batch, free, contracted] and
[batch, contracted, free], multiplied, and the result is laid out as the equation's output. More operands
are taken pairwise from the left.
"""

from __future__ import annotations

import string

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, input_of


def _parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Operand and output labels with '...' spelled out as letters nobody uses."""
    equation = equation.replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise Refuse(f"{len(terms)} operand terms for {len(ranks)} inputs")
    spare = [ch for ch in string.ascii_letters if ch not in equation]
    ellipsis_rank = max((rank - (len(term) - 3) for term, rank in zip(terms, ranks) if "..." in term), default=0)
    dots = "".join(spare[:ellipsis_rank])
    out = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            count = rank - (len(term) - 3)
            term = term.replace("...", dots[ellipsis_rank - count:])
        if len(term) != rank:
            raise Refuse(f"term {term!r} for a rank-{rank} input")
        out.append(term)
    if "->" not in equation:
        counts = {ch: "".join(out).count(ch) for ch in "".join(out)}
        rhs = dots + "".join(sorted(ch for ch, n in counts.items() if n == 1 and ch not in dots))
    else:
        rhs = rhs.replace("...", dots)
    return out, rhs


def _diagonal(c: Composer, x: Out, labels: str) -> tuple[Out, str]:
    """Take the diagonal of every label that appears twice or more in one operand."""
    while True:
        repeated = next((ch for ch in labels if labels.count(ch) > 1), None)
        if repeated is None:
            return x, labels
        first, second = [i for i, ch in enumerate(labels) if ch == repeated][:2]
        n = x.dims[first]
        rest = [i for i in range(len(labels)) if i not in (first, second)]
        moved = c.transpose(x, rest + [first, second])
        flat = c.reshape(moved, [x.dims[i] for i in rest] + [n * n])
        x = c.gather(flat, np.arange(n, dtype=np.int32) * (n + 1), len(rest))
        labels = "".join(labels[i] for i in rest) + repeated


def _sum_away(c: Composer, x: Out, labels: str, keep: set[str]) -> tuple[Out, str]:
    axes = [i for i, ch in enumerate(labels) if ch not in keep]
    if not axes:
        return x, labels
    kept = "".join(ch for ch in labels if ch in keep)
    return (c.reduce("ReduceSum", x, axes, keep=False) if kept else _total(c, x, axes)), kept


def _total(c: Composer, x: Out, axes: list[int]) -> Out:
    """Sum over every axis down to a rank-0 value (Squeeze, as the plugin refuses an empty Reshape)."""
    summed = c.reduce("ReduceSum", c.reshape(x, [int(np.prod(x.dims))]), [0], keep=True)
    return c.op("Squeeze", [summed, c.ints([0], "axis")], outputs=(x.precision, []))


def _layout(c: Composer, x: Out, labels: str, order: str) -> Out:
    if labels == order:
        return x
    return c.transpose(x, [labels.index(ch) for ch in order])


def _product(c: Composer, a: Out, la: str, b: Out, lb: str, keep: set[str]) -> tuple[Out, str]:
    sizes = {**dict(zip(la, a.dims)), **dict(zip(lb, b.dims))}
    for ch in set(la) & set(lb):
        if dict(zip(la, a.dims))[ch] != dict(zip(lb, b.dims))[ch]:
            raise Refuse(f"label {ch!r} has sizes {dict(zip(la, a.dims))[ch]} and {dict(zip(lb, b.dims))[ch]}")
    batch = "".join(ch for ch in la if ch in lb and ch in keep)
    contract = "".join(ch for ch in la if ch in lb and ch not in keep)
    free_a = "".join(ch for ch in la if ch not in lb)
    free_b = "".join(ch for ch in lb if ch not in la)
    size = lambda labels: int(np.prod([sizes[ch] for ch in labels]))  # noqa: E731
    left = c.reshape(_layout(c, a, la, batch + free_a + contract), [size(batch), size(free_a), size(contract)])
    right = c.reshape(_layout(c, b, lb, batch + contract + free_b), [size(batch), size(contract), size(free_b)])
    product = c.matmul(left, right)
    labels = batch + free_a + free_b
    dims = [sizes[ch] for ch in labels]
    return (c.reshape(product, dims) if dims else _total(c, product, [0, 1, 2])), labels


def _always(model, layer) -> bool:
    """The plugin's own Einsum decomposition leaves some equations as an "unsupported layer type Einsum"
    ("...ii->...i", "->"); this formulation is exact for every one, so it replaces them all on 2021.4."""
    return True


@formulation("einsum", text="diagonals by Gather, sums by ReduceSum, products by Transpose/Reshape/MatMul",
             needed=_always)
def einsum(model, layer) -> Out:
    operands = [input_of(model, layer, i) for i in range(len(layer.inputs))]
    if any(v.precision not in FLOAT_PRECISIONS for v in operands):
        raise Refuse("operands must be floating point")
    if any(d <= 0 for v in operands for d in v.dims):
        raise Refuse("a dynamic or zero dimension")
    terms, output = _parse(layer.attrs["equation"], [len(v.dims) for v in operands])
    c = Composer(model, layer, operands[0])
    values = []
    for i, (x, labels) in enumerate(zip(operands, terms)):
        x, labels = _diagonal(c, x, labels)
        others = set(output).union(*(set(t) for j, t in enumerate(terms) if j != i))
        values.append(_sum_away(c, x, labels, others))
    x, labels = values[0]
    for index, (y, other) in enumerate(values[1:], 1):
        later = set(output).union(*(set(values[j][1]) for j in range(index + 1, len(values))))
        x, labels = _product(c, x, labels, y, other, later)
    x, labels = _sum_away(c, x, labels, set(output))
    if not output:
        return x if x is not operands[0] else c.mul(x, 1.0)
    result = _layout(c, x, labels, output)
    return result if result is not operands[0] else c.mul(result, 1.0)
