"""Families of IR op types that several parts of kernelkit treat alike (shape rules, precision rules)."""

from __future__ import annotations

# The opset-1 comparisons: broadcasting inputs of one type, a BOOL output.
COMPARISON_OPS = frozenset({"Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual"})
COMPARISON_KINDS = frozenset(op.lower() for op in COMPARISON_OPS)      # as layer.type.lower() spells them

# Ops whose output length is how many elements the data yields (boxes kept, non-zeros, unique values): no
# frozen input value makes it static.
DATA_DEPENDENT_LENGTH_OPS = frozenset({"NonMaxSuppression", "NonZero", "Unique", "MatrixNms", "MulticlassNms"})
