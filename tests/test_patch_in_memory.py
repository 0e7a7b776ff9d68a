"""Patching in memory (an IRModel and a Target in, the patched model and its report out) and the patch folder
written from it and read back (kernelkit.model.patchdir)."""

from __future__ import annotations

import json

from kernelkit.facts.device import DEFAULT_SHAVES
from kernelkit.facts.target import get_target
from kernelkit.ir.load import load_model
from kernelkit.model import patchdir
from kernelkit.model.blockers import find_blockers
from kernelkit.model.patcher import PASSES, patch_ir, patch_model
from kernelkit.core.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "blocked_model" / "model.onnx"


def test_patch_ir_returns_the_patched_model_and_the_report_the_folder_holds(tmp_path):
    target = get_target("2021.4")
    model = load_model(EXAMPLE, fold=True)
    assert find_blockers(model, target)
    result = patch_ir(model, target, prefer="kernel")
    try:
        assert result.outdir is None and result.model is model and result.exit_code == 0
        assert not find_blockers(model, target, custom_types=list(result.bindings))
        assert {b.layer_type for b in result.bindings.values()} == {"HardSigmoid", "CumSum"}
        assert all(b.build.cl_path.is_file() for b in result.bindings.values())    # built until closed
    finally:
        result.close()
    folder = patch_model(EXAMPLE, tmp_path / "out", target, prefer="kernel")
    written = json.loads((tmp_path / "out" / patchdir.REPORT_FILE).read_text())
    assert written == folder.report and list(written) == list(result.report)
    # The same edits (OpenVINO numbers its generated constants per conversion, so names may differ).
    assert [(c.patcher, c.after) for c in folder.changes] == [(c.patcher, c.after) for c in result.changes]
    assert (written["target"], written["ir_version"], written["custom_layers"]) == (
        result.report["target"], result.report["ir_version"], result.report["custom_layers"])


def test_the_patch_folder_reads_back(tmp_path):
    patch_model(EXAMPLE, tmp_path / "out", "2022.1", prefer="kernel", shaves=4)
    folder = patchdir.read(tmp_path / "out")
    assert folder.model == tmp_path / "out" / patchdir.MODEL_FILE and folder.model.with_suffix(".bin").is_file()
    assert folder.custom_layers == tmp_path / "out" / patchdir.CUSTOM_LAYERS_FILE
    assert (folder.target, folder.shaves) == ("2022.1", 4)
    assert folder.report["schema"] == patchdir.REPORT_SCHEMA
    assert "MYRIAD_CUSTOM_LAYERS" not in folder.config         # the bindings are `custom_layers`, not a setting
    patch_model(EXAMPLE, tmp_path / "native", "2021.4")
    assert patchdir.read(tmp_path / "native").custom_layers is None
    assert patchdir.read(tmp_path / "native").shaves == DEFAULT_SHAVES


def test_the_passes_run_in_one_order_and_each_says_what_it_did():
    names = [p.name for p in PASSES]
    assert names.index("version") < names.index("custom_layer") < names.index("precision") < names.index("ir")
    model = load_model(EXAMPLE, fold=True)
    from kernelkit.model.patcher import PatchRun

    run = PatchRun(model, get_target("2021.4"))
    version_pass = next(p for p in PASSES if p.name == "version")
    changes, refusals = version_pass.apply(run)
    assert changes and all(c.patcher == "version" for c in changes) and changes == run.changes
    ir_pass = next(p for p in PASSES if p.name == "ir")
    assert ir_pass.applies(run) and not ir_pass.applies(PatchRun(model, get_target("2022.1")))
