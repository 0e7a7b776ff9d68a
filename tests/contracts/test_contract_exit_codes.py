"""Contract 2: exit codes, each one from a real invocation. 0 ok, 1 checks failed, 2 bad input or usage (the error
names the file, no traceback), 3 toolchain unavailable (an empty cache folder), 4 `patch --compile` of a model
binding custom layers without clc. Each transcript (stdout, stderr; paths normalised) is pinned too."""

from __future__ import annotations

import pytest

from contract_checks import available, check_golden
from contract_support import CASE_LIST, CASES


@pytest.mark.parametrize("name", [c.name for c in CASE_LIST])
def test_exit_code(contract, name):
    case = CASES[name]
    run = available(contract.case, name)
    shown = contract.transcript(run)
    assert run.code == case.expected, shown
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, shown
    if case.stderr_names:
        for needle in case.stderr_names(contract):
            assert needle in run.stderr, f"stderr does not name {needle!r}:\n{shown}"
    check_golden(contract, f"exit/{name}.txt")


def test_bad_input_writes_nothing(contract):
    for name, folder in [("2-patch-missing-file", "o1"), ("2-patch-malformed-onnx", "o2")]:
        assert available(contract.case, name).code == 2
        assert not (contract.bad_inputs()["root"] / folder).exists(), f"{name} created its output folder"


def test_exit_4_writes_the_patch_but_no_blob(contract):
    run = available(contract.case, "4-patch-compile-custom-layers")
    assert run.code == 4
    out = contract.work / "patch-kernel-compile"
    assert (out / "custom_layers.xml").is_file() and (out / "model.xml").is_file()
    assert not list(out.glob("*.blob")), "a blob made with check ELFs cannot run: none may be written"


def test_exit_3_names_the_cache_folder(contract):
    run = available(contract.case, "3-compile-empty-cache")
    assert str(contract.bad_inputs()["empty_cache"]) in run.stderr    # KERNELKIT_CACHE_DIR is where it looked
