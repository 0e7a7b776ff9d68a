"""Families of IR op types that several parts of kernelkit treat alike (shape rules, precision rules)."""

from __future__ import annotations

# The opset-1 comparisons: broadcasting inputs of one type, a BOOL output.
COMPARISON_OPS = frozenset({"Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual"})
COMPARISON_KINDS = frozenset(op.lower() for op in COMPARISON_OPS)      # as layer.type.lower() spells them

# Ops whose output length is how many elements the data yields (boxes kept, non-zeros, unique values): no
# frozen input value makes it static.
DATA_DEPENDENT_LENGTH_OPS = frozenset({"NonMaxSuppression", "NonZero", "Unique", "MatrixNms", "MulticlassNms"})

# Ops whose output size depends on the data: the MYRIAD plugin runs them with buffers of the upper bound and the
# real size beside them (its StaticShapeNonZero and StaticShapeNonMaxSuppression stages, DynamicToStaticShape).
# NMS only with a constant max_output_boxes_per_class (input 2): else "Check 'outIndicesShape.is_static()'
# failed" (the real 2021.4 plugin on test_nonmaxsuppression_two_classes with every input fed).
DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "NonMaxSuppression"})
