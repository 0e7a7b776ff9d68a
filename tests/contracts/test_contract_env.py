"""Contract 5 (environment): every KERNELKIT_* variable the package read when the contracts were pinned is still
read (grep of the package source), and those that can be observed cheaply still do what they did."""

from __future__ import annotations

import json

import pytest

from contract_checks import available, check_golden
from contract_support import ENV_CASES, CASES, GOLDEN, cli_env, kernelkit, package_env_tokens


def test_every_pinned_variable_is_still_in_the_package():
    pinned = json.loads((GOLDEN / "data" / "env-vars.json").read_text())["variables"]
    assert len(pinned) >= 10
    present = package_env_tokens()
    missing = [name for name in pinned if name not in present]
    assert not missing, f"no longer found anywhere under kernelkit/: {missing}"


@pytest.mark.parametrize("name", [c.name for c in ENV_CASES])
def test_variable_takes_effect(contract, name):
    case = CASES[name]
    run = available(contract.case, name)
    shown = contract.transcript(run, case.note)
    assert run.code == case.expected, shown
    assert "Traceback" not in run.stderr, shown
    if case.stderr_names:
        for needle in case.stderr_names(contract):
            assert needle in run.stderr, f"stderr does not name {needle!r}:\n{shown}"
    check_golden(contract, f"env/{name}.txt")


def test_kernelkit_home_moves_the_kernel_library(contract):
    """KERNELKIT_HOME replaces the repository root: an empty one has no library kernels to offer."""
    default = kernelkit("coverage")
    moved = kernelkit("coverage", env=cli_env(KERNELKIT_HOME=str(contract.bad_inputs()["empty_home"])))
    assert default.code == 0 and moved.code == 0, moved.stderr
    assert "+ kernel" in default.stdout
    assert "+ kernel" not in moved.stdout


def test_host_fp16_switch(contract):
    default = kernelkit("toolchain", "status")
    off = kernelkit("toolchain", "status", env=cli_env(KERNELKIT_HOST_FP16="0"))
    assert "turned off (KERNELKIT_HOST_FP16=0)" in off.stdout, off.stdout + off.stderr
    assert "KERNELKIT_HOST_FP16=0" not in default.stdout
