"""Shape inference for layers the patchers create, where the IR has dynamic (-1) lengths."""
import numpy as np
import pytest

from kernelkit.ir.graph import broadcast_dims


@pytest.mark.parametrize("shapes", [[(2, 3), (3,)], [(4, 1, 5), (1, 6, 1)], [(1,), (7, 1)], [(), (2, 2)]])
def test_static_shapes_broadcast_as_numpy_does(shapes):
    assert broadcast_dims(shapes) == list(np.broadcast_shapes(*shapes))


def test_dynamic_length_meets_one_and_stays_dynamic():
    # fcos_resnet50_fpn: LogicalAnd of a (-1,) mask with a (1,) constant.
    assert broadcast_dims([(-1,), (1,)]) == [-1]
    assert broadcast_dims([(1, -1), (3, 1)]) == [3, -1]


def test_static_length_wins_over_dynamic():
    assert broadcast_dims([(-1, 4), (5, 4)]) == [5, 4]
    assert broadcast_dims([(5, 4), (-1, 4)]) == [5, 4]


def test_incompatible_static_lengths_refused():
    assert broadcast_dims([(2, 3), (4, 3)]) is None
    assert broadcast_dims([(-1, 2), (3,)]) is None
