"""The index_map family at input ranks 4 and 3 (params.rank): gathers run on the SHAVE emulator and match
numpy; rank 3 binds no I.B lookup (the plugin refuses it there)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kernelkit.kernel.bindings.model import ScalarParam
from kernelkit.kernel.builder.build import build_kernel
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.render import myriad_layers
from kernelkit.kernel.spec import load_spec


def upsample_for_rank(folder, rank):
    kernel = folder / f"up{rank}"
    shutil.copytree(KERNELS_DIR / "upsample_nearest_h", kernel)
    toml = kernel / "kernel.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("[[cases]]")].replace("[kernel.params]\n", f"[kernel.params]\nrank = {rank}\n"))
    return kernel


@pytest.mark.parametrize("shape,factor", [((3, 4, 5), 2), ((1, 2, 7), 3), ((2, 1, 9), 1)])
def test_rank_three_upsampling(tmp_path, shape, factor):
    from kernelkit.kernel.emulator.run import emulate

    result = build_kernel(upsample_for_rank(tmp_path, 3), tmp_path / "out")
    x = np.random.default_rng(factor).uniform(-3, 3, shape).astype(np.float16)
    want = x.repeat(factor, axis=1).repeat(factor, axis=2)
    run = emulate(result.xml_path, "UpsampleNearestH", [x], attrs={"factor": factor}, output_shapes=[want.shape], as_patched=True)
    np.testing.assert_array_equal(np.asarray(run.outputs[0]), want)        # a gather copies values exactly


def test_rank_three_binds_no_batch_lookup(tmp_path):
    sources = {rank: {p.source for p in myriad_layers(load_spec(upsample_for_rank(tmp_path, rank)))[0].kernels[0].params
                      if isinstance(p, ScalarParam)} for rank in (3, 4)}
    assert "I.B" in sources[4] and "I.B" not in sources[3]
    assert sources[4] - sources[3] == {"I.B"}


def test_rank_two_is_not_offered(tmp_path):
    with pytest.raises(KernelkitError) as info:
        load_spec(upsample_for_rank(tmp_path, 2))
    assert info.value.where == "kernel.params.rank" and "one of 3, 4" in info.value.message


def test_rank_four_kernel_refuses_a_rank_three_case(tmp_path):
    kernel = upsample_for_rank(tmp_path, 4)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text() + '\n[[cases]]\nname = "chw"\nshapes = [[3, 4, 5]]\nattrs = { factor = 2 }\n'
                    'output_shape = [3, 8, 10]\n')
    with pytest.raises(KernelkitError) as info:
        load_spec(kernel)
    assert "rank = 3" in info.value.hint
