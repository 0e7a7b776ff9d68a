"""family.toml features the template families use for ranks and work sizes ([work.let], rank_param,
rank_inputs, [work.ranks.N], min_rank), and the errors a malformed family gets. Families are read from a
temporary templates folder."""

from __future__ import annotations

import textwrap

import pytest

from kernelkit.kernel import spec as spec_module
from kernelkit.kernel.bindings import expr
from kernelkit.core.errors import KernelkitError

FAMILY = """
[family]
template = "kernel.cl.j2"
rank_param = "rank"
rank_inputs = { 2 = [2], 4 = [3, 4] }

[work]
dim = "input,0"
global = ["ROWS", "8"]
local = ["HALF", "8"]

[work.let]
ROWS = "Y*F*B"
HALF = "ROWS/ROWS"

[work.ranks.2]
global = ["B", "8"]

[[scalars]]
name = "W"
type = "int"
source = "I.X"
port = 0

[[scalars]]
name = "C"
type = "int"
source = "I.F"
port = 0
min_rank = 3

[params]
rank = 4
"""

KERNEL = """
[kernel]
name = "k"
op = "K"
family = "fam"
[[kernel.inputs]]
name = "x"
[kernel.output]
name = "y"
"""


@pytest.fixture
def templates(tmp_path, monkeypatch):
    folder = tmp_path / "templates"
    (folder / "fam").mkdir(parents=True)
    monkeypatch.setattr(spec_module, "TEMPLATES_DIR", folder)
    return folder


def _kernel(tmp_path, extra=""):
    folder = tmp_path / "k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.toml").write_text(textwrap.dedent(KERNEL) + extra)
    return folder


def test_lets_ranks_and_rank_scoped_scalars(templates, tmp_path):
    (templates / "fam" / "family.toml").write_text(FAMILY)
    spec = spec_module.load_spec(_kernel(tmp_path))
    assert spec.work.global_ == ["Y*F*B", "8"] and spec.work.local == ["(Y*F*B)/(Y*F*B)", "8"]
    assert expr.evaluate(spec.work.local[0], expr.size_variables((2, 3, 4, 5))) == 1
    assert [s.name for s in spec.scalars] == ["W", "C"] and spec.ranks == [3, 4]
    low = spec_module.load_spec(_kernel(tmp_path / "low", "[kernel.params]\nrank = 2\n"))
    assert [s.name for s in low.scalars] == ["W"] and low.ranks == [2]
    assert low.work.global_ == ["B", "8"] and low.work.local == ["(Y*F*B)/(Y*F*B)", "8"]


@pytest.mark.parametrize("change,where", [
    (('ROWS = "Y*F*B"', 'rows = "Y*F*B"'), "work.let.rows"),
    (('ROWS = "Y*F*B"', 'X = "Y*F*B"'), "work.let.X"),
    (("rank_inputs = { 2 = [2], 4 = [3, 4] }", 'rank_inputs = { two = [2] }'), "family.rank_inputs.two"),
    (("[work.ranks.2]", "[work.ranks.two]"), "work.ranks.two"),
    (("[params]\nrank = 4\n", "[params]\n"), "family.rank_param"),
])
def test_malformed_family_is_reported_at_its_key(templates, tmp_path, change, where):
    (templates / "fam" / "family.toml").write_text(FAMILY.replace(*change))
    with pytest.raises(KernelkitError) as info:
        spec_module.load_spec(_kernel(tmp_path))
    assert info.value.where == where
    assert str(info.value.path).endswith("family.toml")
