"""Contract 3: file formats on the bundled demo model. The patch output folder (default and --prefer kernel) file
by file, the kernelkit.patch/1 report, `inspect --json` (kernelkit.inspect/1), the compiled blob (byte-identical)
and the NN Archive (members and config.json)."""

from __future__ import annotations

import json

import pytest

from contract_checks import available, check_golden, golden_paths


@pytest.mark.parametrize("path", golden_paths("formats/"))
def test_format_is_unchanged(contract, path):
    check_golden(contract, path)


def test_patch_outputs(contract):
    native, kernel = contract.demo_patch("native"), contract.demo_patch("kernel")
    # patch compiles with the real plugin where it is provisioned: the kernels' .bin need clc there (exit 4)
    assert native["run"].code == 0 and kernel["run"].code in (0, 4)
    for info, prefer in [(native, "native"), (kernel, "kernel")]:
        report = json.loads((info["out"] / "patch-report.json").read_text())
        assert report["schema"] == "kernelkit.patch/1" and report["ok"] is True and report["prefer"] == prefer
        assert report["remaining_blockers"] == []
    assert "custom_layers.xml" not in native["files"]
    assert {"custom_layers.xml", "hard_sigmoid_h.cl", "cumsum.cl"} <= set(kernel["files"])


def test_inspect_json(contract):
    run = contract.inspect_json()
    assert run.code == 1, "the demo model has blockers: inspect exits 1"
    report = json.loads(run.stdout)
    assert report["schema"] == "kernelkit.inspect/1" and len(report["blockers"]) == 8


def test_archive_holds_the_compiled_blob(contract):
    blob = available(contract.demo_blob)
    archive = available(contract.demo_archive)
    assert blob["run"].code == 0 and archive["compile"].code == 0 and archive["run"].code == 0
    members = {m["name"]: m for m in archive["members"]}
    config = json.loads(members["config.json"]["data"])
    blob_name = config["model"]["metadata"]["path"]
    data = members[blob_name]["data"]
    if blob_name.endswith(".superblob"):
        # depthai-core's layout: u64 BE base size, 16 u64 BE patch sizes, the base, bsdiff patches in SHAVE order;
        # the patch for the SHAVE count `compile` used (its blob header's u32 at byte 100) gives that blob.
        import struct

        import bsdiff4

        shaves = struct.unpack_from("<I", blob["data"], 100)[0]
        sizes = struct.unpack_from(">17Q", data)
        base = data[136:136 + sizes[0]]
        start = 136 + sizes[0] + sum(sizes[1:shaves])
        patch = data[start:start + sizes[shaves]]
        data = bsdiff4.patch(base, patch) if patch else base
    assert data == blob["data"], "the archived blob is not the blob `compile` writes"
