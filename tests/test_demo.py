"""`kernelkit demo` (what `./kit demo` runs): both paths on the bundled model, judged by the real plugin."""

from __future__ import annotations

import pytest

from kernelkit.cli import main
from myriad_models import require_toolchain


@pytest.mark.toolchain
def test_demo_compiles_the_native_patch_and_has_the_plugin_take_the_kernel_bindings(tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    # the default path: a real blob, no custom layer left
    assert (out / "patched" / "model.blob").stat().st_size > 0
    assert not (out / "patched" / "custom_layers.xml").exists()
    assert "no custom layer" in text
    # --prefer kernel: both library kernels bound, verified on the emulator, every binding taken by the plugin
    bindings = (out / "patched-kernel" / "custom_layers.xml").read_text()
    assert 'name="HardSigmoid"' in bindings and 'name="CumSum"' in bindings
    assert "emulated on SHAVE: gate (HardSigmoid" in text
    assert "took the binding of every custom layer (gate (HardSigmoid), running_sum (CumSum))" in text
    assert not list((out / "patched-kernel").glob("*.blob"))
    # the lint has nothing to say about the library's own kernels
    assert "warning" not in text.lower()
