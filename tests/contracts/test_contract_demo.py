"""Contract 6: `kernelkit demo`, run from an empty folder (its default output folder is out/demo under the working
folder): exit 0, stdout and stderr as pinned (paths and build-cache wording normalised), the files it leaves."""

from __future__ import annotations

import pytest

from contract_checks import available, check_golden, golden_paths


@pytest.mark.parametrize("path", golden_paths("demo/"))
def test_demo_is_unchanged(contract, path):
    check_golden(contract, path)


def test_demo_succeeds_and_writes_under_its_working_folder(contract):
    info = available(contract.demo)
    assert info["run"].code == 0, contract.transcript(info["run"])
    assert (info["cwd"] / "out" / "demo" / "patched" / "model.blob").is_file()
    assert (info["cwd"] / "out" / "demo" / "patched-kernel" / "custom_layers.xml").is_file()


def test_demo_patches_like_the_cli_but_for_auto_generated_names(contract):
    """The demo's model doctor writes the folders `kernelkit patch` writes. Today they differ only in OpenVINO's
    auto-generated node names (`Constant_N`, a per-process counter: the demo patches after other work)."""
    demo = available(contract.demo)["files"]
    for prefer, sub in [("native", "patched"), ("kernel", "patched-kernel")]:
        cli = contract.demo_patch(prefer)["files"]
        in_demo = {name[len(sub) + 1:]: rec for name, rec in demo.items() if name.startswith(sub + "/")}
        # both compile their folder with the real plugin (model.blob and model.graph.dot where it compiles)
        assert set(in_demo) == set(cli), f"{sub}: other files than `kernelkit patch` writes"
        for name, rec in cli.items():
            key = "sha256_auto_names_masked" if "sha256_auto_names_masked" in rec else "sha256"
            assert in_demo[name].get(key) == rec[key], f"{sub}/{name} differs from the CLI's beyond node names"
