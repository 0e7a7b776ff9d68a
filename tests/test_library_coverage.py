"""`kernelkit coverage`: op -> native / rewrite / library kernel / not covered per target, from the real
knowledge base, rewrite table and kernels/ folder."""

from __future__ import annotations

import pytest

from kernelkit.cli import main
from kernelkit.core.errors import KernelkitError
from kernelkit.library.catalog import library_kernels
from kernelkit.doctor.coverage import KERNEL, NATIVE, NONE, REWRITE, coverage, coverage_markdown
from kernelkit.facts.knowledge import load_knowledge
from kernelkit.facts.target import target_names
from kernelkit.model.formulations.registry import formulations
from kernelkit.core.paths import REPO_ROOT


@pytest.fixture(scope="module")
def table():
    targets, rows = coverage()
    return targets, {row.op: row for row in rows}


def test_every_target_is_a_column(table):
    targets, _ = table
    assert targets == list(target_names())


def test_library_kernel_ops_are_covered_everywhere(table):
    _, rows = table
    for kernel in library_kernels():
        row = rows[load_knowledge(target_names()[0]).canonical(kernel.op)]
        for target in target_names():
            assert KERNEL in row.means[target], (kernel.op, target)
            assert row.status[target] != NONE


def test_status_follows_the_knowledge_base_and_rewrites(table):
    _, rows = table
    for target in target_names():
        kb = load_knowledge(target)
        for op, row in rows.items():
            rule = kb.op_rule(op)
            native = rule is not None and rule.supported
            assert (row.status[target] == NATIVE) == native, (op, target)
            if not native and op.lower() in formulations():
                assert row.status[target] == REWRITE, (op, target)


def test_ops_with_no_route_are_reported_not_covered(table):
    _, rows = table
    uncovered = [op for op, row in rows.items() if row.status["2022.3"] == NONE]
    assert uncovered
    for op in uncovered:
        assert not rows[op].kernels and not rows[op].rewrite


def test_cubic_only_kernel_is_shown_with_its_condition():
    text = coverage_markdown(["2022.3"])
    line = next(l for l in text.splitlines() if l.startswith("| Interpolate |"))
    assert "kernel (mode=cubic)" in line


def test_unknown_target_is_a_clear_error(capsys):
    with pytest.raises(KernelkitError, match="unknown target"):
        coverage(["2020.1"])
    assert main(["coverage", "--target", "2020.1"]) == 2
    assert "use one of" in capsys.readouterr().err


def test_cli_prints_one_target(capsys):
    assert main(["coverage", "--target", "2021.4"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["op", "2021.4", "2021.4", "without", "clc"]
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    # Mish (the library's MishH type) has only a kernel; Trilu has a native formulation besides its kernel
    assert rows["MishH"].split()[1] == "kernel" and "no (kernel needs clc)" in rows["MishH"]
    assert rows["Trilu"].split()[1:4] == ["rewrite", "+", "kernel"] and rows["Trilu"].split()[-1] == "yes"


def test_deployable_without_clc_follows_the_ways_an_op_runs(table):
    from kernelkit.model.passes.native import measurement

    _, rows = table
    for op, row in rows.items():
        verdict = row.deployable["2021.4"]
        if row.status["2021.4"] == NATIVE:
            assert verdict == "yes", op
        elif row.status["2021.4"] in (KERNEL, NONE):
            assert verdict.startswith("no"), op
        else:
            record = measurement(op)
            # a formulation counts once the real plugin compiled it in every measured case
            assert verdict.startswith("yes") == (record is None or record.get("compiled") is not False), op
    # the formulations this work is about: no longer kernel-only on 2021.4
    for op in ("Sin", "Acosh", "GridSample", "ReduceProd", "ScatterNDUpdate", "GroupNormalization", "Col2Im"):
        assert rows[op].deployable["2021.4"] == "yes", op
        assert rows[op].kernels, op


def test_committed_page_is_the_command_output():
    # docs/coverage.md is generated: regenerate with `kernelkit coverage --markdown > docs/coverage.md`
    assert (REPO_ROOT / "docs" / "coverage.md").read_text() == coverage_markdown()
