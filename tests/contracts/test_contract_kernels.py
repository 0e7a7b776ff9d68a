"""Contract 5 (kernel data): every kernels/*/kernel.toml and templates/*/family.toml still loads through the CLI,
and what `build` writes and `render` prints for each library kernel is byte-identical (the .cl's build stamp
aside); `kernelkit new` still scaffolds kernels of every family that build."""

from __future__ import annotations

import tomllib

import pytest

from contract_checks import check_golden, golden_paths
from contract_support import KERNELS, TEMPLATES, strip_stamp


@pytest.mark.parametrize("path", golden_paths("kernels/"))
def test_kernel_output_is_unchanged(contract, path):
    check_golden(contract, path)


def test_every_library_kernel_builds(contract):
    info = contract.build()
    assert info["run"].code == 0, contract.transcript(info["run"])
    assert len(info["kernels"]) == 31
    for kernel in info["kernels"]:
        for suffix in (".cl", ".xml", ".gpu.xml"):
            assert f"{kernel}{suffix}" in info["files"], f"build wrote no {kernel}{suffix}"


def test_render_prints_what_build_writes(contract):
    out = contract.build()["out"]
    for (kernel, what), run in contract.renders().items():
        assert run.code == 0, f"render {kernel} --what {what}: {run.stderr}"
        written = (out / f"{kernel}{ {'cl': '.cl', 'xml': '.xml', 'gpu': '.gpu.xml'}[what] }").read_bytes()
        if what == "cl":
            assert written.startswith(b"/* kernelkit-build "), f"{kernel}.cl has no build stamp"
            written = strip_stamp(written)
        assert run.stdout.encode() == written, f"render {kernel} --what {what} differs from build's file"


def test_every_family_toml_is_loaded(contract):
    families = {p.parent.name for p in TEMPLATES.glob("*/family.toml")}
    used = {tomllib.loads(p.read_text())["kernel"]["family"] for p in KERNELS.glob("*/kernel.toml")}
    info = contract.scaffolds()
    assert all(r.code == 0 for r in info["new"]) and info["build"].code == 0, contract.transcript(info["build"])
    scaffolded = {"elementwise", "axis_scan", "index_map"}
    assert families and families <= used | scaffolded, f"family.toml never loaded: {families - used - scaffolded}"
