"""Kernel specs: the bundled ones load as documented; every kind of bad spec is refused naming file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import Case, KernelSpec, list_families, load_spec, scalar_kind

MINIMAL = """
[kernel]
name = "k"
op = "K"
family = "elementwise"

[[kernel.inputs]]
name = "x"

[kernel.output]
name = "y"

[kernel.params]
expr = "x"
"""


def write_spec(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "k"
    folder.mkdir(exist_ok=True)
    (folder / "kernel.toml").write_text(textwrap.dedent(text))
    for name, content in (extra or {}).items():
        (folder / name).write_text(content)
    return folder


def load_error(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> KernelkitError:
    folder = write_spec(tmp_path, text, extra)
    with pytest.raises(KernelkitError) as info:
        load_spec(folder)
    assert info.value.path and info.value.path.endswith("kernel.toml"), str(info.value)
    return info.value


# --- the bundled kernels ---------------------------------------------------------------------------

def test_mish_h_spec_as_the_interface_describes():
    spec = load_spec(KERNELS_DIR / "mish_h")
    assert isinstance(spec, KernelSpec)
    assert (spec.name, spec.op, spec.family) == ("mish_h", "MishH", "elementwise")
    assert spec.path == (KERNELS_DIR / "mish_h" / "kernel.toml").resolve()
    assert spec.dir == (KERNELS_DIR / "mish_h").resolve()
    assert spec.reference["numpy"] == "x * np.tanh(np.log1p(np.exp(x)))"
    assert spec.reference["openvino"] == {"op": "Mish", "opset": "opset4"}
    case = spec.cases[0]
    assert isinstance(case, Case)
    assert (case.name, case.shapes, case.dtypes, case.low, case.high) == ("odd_width", [(1, 3, 5, 7)], ["f16"],
                                                                         -6.0, 6.0)
    assert spec.cases[2].values == "edges" and spec.cases[2].atol == 2e-3
    # The elementwise family needs no shape scalar (its work sizes tile the element count), so ranks 0-4 work.
    assert spec.scalars == []
    assert spec.stages[0].args == ["x", "y"]
    assert spec.ranks == [0, 1, 2, 3, 4]


def test_cumsum_spec_takes_the_axis_from_input_1_and_has_four_alternatives():
    spec = load_spec(KERNELS_DIR / "cumsum")
    assert spec.op == "CumSum" and spec.family == "axis_scan"
    assert [(t.name, t.dtype, t.format, t.port) for t in spec.inputs] == [("x", "f16", "BFYX", 0),
                                                                          ("axis", "i32", "ANY", 1)]
    assert spec.params["axis_from"] == "input"
    wheres = [(alt.where["exclusive"], alt.where["reverse"]) for alt in spec.alternatives]
    # the real plugin spells CumSum's flags true/false whatever the IR writes: four alternatives
    assert wheres == [("false", "false"), ("true", "false"), ("false", "true"), ("true", "true")]
    for alt in spec.alternatives:
        assert alt.scalars == {"exclusive": "1" if alt.where["exclusive"] == "true" else "0",
                               "reverse": "1" if alt.where["reverse"] == "true" else "0"}
    fixed_axes = {case.name: case.fixed for case in spec.cases}
    assert fixed_axes["along_c_exclusive"] == {1: 1}
    assert fixed_axes["along_h_reverse"] == {1: -2}


def test_every_bundled_kernel_loads():
    folders = sorted(p for p in KERNELS_DIR.iterdir() if (p / "kernel.toml").is_file())
    assert {p.name for p in folders} >= {"mish_h", "hard_sigmoid_h", "cumsum", "upsample_nearest_h"}
    families = {load_spec(p).family for p in folders}
    assert families >= {"elementwise", "axis_scan", "index_map"}


def test_families_are_discovered_from_templates():
    assert set(list_families()) >= {"elementwise", "axis_scan", "index_map"}


def test_scalar_kinds():
    assert scalar_kind("I.X") == "shape" and scalar_kind("O.f") == "shape"
    assert scalar_kind("3") == "literal" and scalar_kind("-0.5") == "literal"
    assert scalar_kind("alpha") == "attribute"


def test_minimal_spec_gets_family_defaults(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL))
    assert spec.entry == "k" and spec.max_shaves == 0
    assert spec.work.dim == "input,0" and spec.work.global_ == ["B*F*Y*X"] and len(spec.work.local) == 1
    assert spec.params["staging"] == "direct" and spec.params["expr"] == "x"
    assert spec.cases == []


def test_a_kernel_toml_path_is_accepted(tmp_path):
    folder = write_spec(tmp_path, MINIMAL)
    assert load_spec(folder / "kernel.toml").name == "k"


def test_user_work_sizes_and_max_shaves(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL + """
        [kernel.work]
        global = ["16", "Y", "F*B"]
        local = ["16", "1", "1"]
    """.replace("\n        ", "\n") + '\n'))
    assert spec.work.global_ == ["16", "Y", "F*B"] and spec.work.dim == "input,0"


# --- bad input: one test per kind ------------------------------------------------------------------

def test_malformed_toml_names_file_and_line(tmp_path):
    err = load_error(tmp_path, '[kernel]\nname = "k"\nop = \n')
    assert err.line == 3
    assert "malformed TOML" in err.message


def test_not_utf8(tmp_path):
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "kernel.toml").write_bytes(b'[kernel]\nname = "\xff"\n')
    with pytest.raises(KernelkitError, match="UTF-8"):
        load_spec(folder)


def test_missing_folder_and_missing_spec(tmp_path):
    with pytest.raises(KernelkitError, match="not found"):
        load_spec(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KernelkitError, match="no kernel.toml") as info:
        load_spec(tmp_path / "empty")
    assert "kernelkit new" in info.value.hint


def test_unknown_key_at_top_level(tmp_path):
    err = load_error(tmp_path, MINIMAL + "\n[extra]\na = 1\n")
    assert err.where == "extra" and "unknown key" in err.message


def test_unknown_key_in_an_input_names_its_index(tmp_path):
    text = MINIMAL.replace('[[kernel.inputs]]\nname = "x"\n',
                           '[[kernel.inputs]]\nname = "a"\n\n[[kernel.inputs]]\nname = "b"\ncolour = "red"\n')
    err = load_error(tmp_path, text.replace('expr = "x"', 'expr = "a + b"'))
    assert err.where == "kernel.inputs[1].colour"
    assert "kernel.toml: kernel.inputs[1].colour: unknown key" in str(err)


def test_bad_format_names_the_key(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('name = "x"\n', 'name = "x"\nformat = "NCHW"\n', 1))
    assert err.where == "kernel.inputs[0].format"
    assert "BFYX" in err.message


def test_missing_required_key(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('op = "K"\n', ""))
    assert err.where == "kernel.op" and err.message == "is required"


def test_wrong_value_type(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('family = "elementwise"\n',
                                               'family = "elementwise"\nmax_shaves = "4"\n'))
    assert err.where == "kernel.max_shaves" and "integer" in err.message


def test_boolean_is_not_a_number(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('family = "elementwise"\n',
                                               'family = "elementwise"\nmax_shaves = true\n'))
    assert "boolean" in err.message


def test_unknown_family_lists_the_known_ones(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('"elementwise"', '"elementwize"'))
    assert err.where == "kernel.family"
    assert "elementwise" in err.hint and "custom" in err.hint


def test_missing_family_parameter(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('[kernel.params]\nexpr = "x"\n', ""))
    assert err.where == "kernel.params" and "expr" in err.message


def test_argument_name_not_an_identifier(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('name = "y"', 'name = "2y"'))
    assert err.where == "kernel.output.name"


def test_argument_name_is_a_keyword(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('name = "y"', 'name = "float"'))
    assert "keyword" in err.message


def test_duplicate_argument_names(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('name = "y"', 'name = "x"'))
    assert err.where == "kernel.output.name" and "already used" in err.message


def test_argument_named_like_a_template_local(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('name = "y"', 'name = "lane"'))
    assert "template uses" in err.message


def test_user_scalar_clashing_with_a_family_scalar_replaces_it(tmp_path):
    scan = MINIMAL.replace('"elementwise"', '"axis_scan"').replace('expr = "x"', 'axis_from = "scalar"')
    spec = load_spec(write_spec(tmp_path, scan + '\n[[kernel.scalars]]\nname = "W"\ntype = "int"\n'
                                                 'source = "I.X"\nport = 0\n'
                                                 '\n[[kernel.scalars]]\nname = "axis"\ntype = "int"\n'
                                                 'source = "axis"\n'))
    assert [(s.name, s.implicit) for s in spec.scalars] == [("C", True), ("W", False), ("axis", False)]


def test_bad_scalar_source(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.scalars]]\nname = "s"\ntype = "int"\nsource = "a b"\n')
    assert err.where == "kernel.scalars[0].source"


def test_int_scalar_with_float_literal(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.scalars]]\nname = "s"\ntype = "int"\nsource = "0.5"\n')
    assert "integer literal" in err.message


def test_scalar_type_must_be_int_or_float(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.scalars]]\nname = "s"\ntype = "half"\nsource = "1"\n')
    assert err.where == "kernel.scalars[0].type"


def test_shape_scalar_port_out_of_range(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.scalars]]\nname = "H"\ntype = "int"\nsource = "I.Y"\n'
                                         'port = 1\n')
    assert "scalar H" in err.where and "port" in err.message


def test_bad_work_size_expression(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[kernel.work]\nglobal = ["-X", "Y", "1"]\nlocal = ["1", "1", "1"]\n')
    assert err.where == "kernel.work.global[0]" and "unary minus" in err.hint


def test_work_dim_needs_an_index(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[kernel.work]\ndim = "input"\n')
    assert err.where == "kernel.work.dim"


def test_work_dim_names_a_missing_input(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[kernel.work]\ndim = "input,3"\n')
    assert "input 3" in err.message


def test_global_and_local_lengths_differ(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[kernel.work]\nglobal = ["8", "Y"]\nlocal = ["8"]\n')
    assert err.where == "kernel.work.local"


def test_alternative_overrides_unknown_scalar(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.alternatives]]\nwhere = { mode = "a" }\n'
                                         'scalars = { nope = 1 }\n')
    assert err.where == "kernel.alternatives[0].scalars.nope"


def test_alternative_needs_something_to_choose_by(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[kernel.alternatives]]\nmax_shaves = 2\n')
    assert err.where == "kernel.alternatives[0]"


def test_too_many_inputs_for_the_family(tmp_path):
    inputs = "".join(f'[[kernel.inputs]]\nname = "i{i}"\n' for i in range(3))
    err = load_error(tmp_path, MINIMAL.replace('[[kernel.inputs]]\nname = "x"\n', inputs))
    assert err.where == "kernel.inputs" and "1 to 2" in err.message


def test_custom_family_needs_its_template(tmp_path):
    text = MINIMAL.replace('family = "elementwise"', 'family = "custom"\ntemplate = "mine.cl.j2"')
    err = load_error(tmp_path, text)
    assert err.where == "kernel.template" and "not found" in err.message


def test_template_name_too_long_for_the_file_system_is_refused(tmp_path):
    # Found by fuzzing: a 5,000-character name made is_file() raise OSError (ENAMETOOLONG).
    text = MINIMAL.replace('family = "elementwise"', f'family = "custom"\ntemplate = "{"t" * 5000}.cl.j2"')
    err = load_error(tmp_path, text)
    assert err.where == "kernel.template" and "longer than a file system allows" in err.message


def test_family_name_too_long_for_the_file_system_is_refused(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('family = "elementwise"', f'family = "{"f" * 300}"'))
    assert err.where == "kernel.family" and "longer than a file system allows" in err.message
    assert err.path == str(tmp_path / "kernel.toml") or err.path.endswith("kernel.toml")


@pytest.mark.parametrize("name", ["../outside.cl.j2", "/etc/passwd"])
def test_template_outside_the_kernel_folder_is_refused(tmp_path, name):
    text = MINIMAL.replace('family = "elementwise"', f'family = "custom"\ntemplate = "{name}"')
    err = load_error(tmp_path, text)
    assert err.where == "kernel.template" and "leads out of the folder" in err.message


def test_template_key_only_for_custom(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('family = "elementwise"', 'family = "elementwise"\ntemplate = "a"'))
    assert err.where == "kernel.template"


def test_stages_are_for_the_custom_family(tmp_path):
    text = MINIMAL + ('\n[[kernel.stages]]\nentry = "s0"\nargs = ["x", "y"]\ndim = "input,0"\n'
                      'global = ["1"]\nlocal = ["1"]\n')
    err = load_error(tmp_path, text)
    assert err.where == "kernel.stages"


def test_stage_argument_must_exist(tmp_path):
    text = ('[kernel]\nname = "k"\nop = "K"\nfamily = "custom"\ntemplate = "t.cl.j2"\n'
            '[[kernel.inputs]]\nname = "x"\n[kernel.output]\nname = "y"\n'
            '[[kernel.stages]]\nentry = "s0"\nargs = ["x", "nope"]\ndim = "input,0"\nglobal = ["1"]\nlocal = ["1"]\n')
    err = load_error(tmp_path, text, {"t.cl.j2": ""})
    assert err.where == "kernel.stages[0].args[1]"


def test_two_stage_custom_spec_with_buffers(tmp_path):
    text = ('[kernel]\nname = "k"\nop = "K"\nfamily = "custom"\ntemplate = "t.cl.j2"\n'
            '[[kernel.inputs]]\nname = "x"\n[kernel.output]\nname = "y"\n'
            '[[kernel.stages]]\nentry = "k_sum"\nargs = ["x", "partial"]\ndim = "input,0"\n'
            'global = ["1", "Y", "F"]\nlocal = ["1", "1", "1"]\n'
            '[[kernel.stages.buffers]]\nname = "partial"\ntype = "output_buffer"\nid = 0\ndim = "input,0"\n'
            'size = "Y*F*4"\n'
            '[[kernel.stages]]\nentry = "k_scale"\nargs = ["x", "partial_in", "y"]\ndim = "input,0"\n'
            'global = ["1", "Y", "F"]\nlocal = ["1", "1", "1"]\nmax_shaves = 1\n'
            '[[kernel.stages.buffers]]\nname = "partial_in"\ntype = "input_buffer"\nid = 0\ndim = "input,0"\n'
            'size = "Y*F*4"\n')
    spec = load_spec(write_spec(tmp_path, text, {"t.cl.j2": ""}))
    assert [st.entry for st in spec.stages] == ["k_sum", "k_scale"]
    assert spec.entry == "k_sum" and spec.stages[1].max_shaves == 1
    assert spec.buffer("partial_in").type == "input_buffer" and spec.buffer("partial").c_type == "float"


def test_case_with_wrong_number_of_shapes(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3], [1, 2, 3]]\n')
    assert err.where == "cases[0].shapes"


def test_case_rank_the_family_cannot_compute(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3, 4, 5]]\n')
    assert err.where == "cases[0].shapes[0]" and "rank 5" in err.message and "reshape to rank 4" in err.hint


def test_case_bad_dtype_and_values(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\ndtypes = ["f64"]\n')
    assert err.where == "cases[0].dtypes[0]"
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\nvalues = "random"\n')
    assert err.where == "cases[0].values"


def test_case_low_above_high(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\nlow = 2.0\nhigh = 1.0\n')
    assert err.where == "cases[0].low"


def test_case_fixed_names_an_input(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\nfixed = { z = 1 }\n')
    assert err.where == "cases[0].fixed.z"


def test_case_not_compared_names_a_reference_and_a_reason(tmp_path):
    case = '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\n'
    err = load_error(tmp_path, MINIMAL + case + 'not_compared = { onnxruntime = "x" }\n')
    assert err.where == "cases[0].not_compared.onnxruntime" and "openvino" in err.hint
    err = load_error(tmp_path, MINIMAL + case + 'not_compared = { openvino = " " }\n')
    assert err.where == "cases[0].not_compared.openvino" and "why" in err.message


def test_duplicate_case_names(tmp_path):
    case = '\n[[cases]]\nname = "c"\nshapes = [[1, 2, 3]]\n'
    err = load_error(tmp_path, MINIMAL + case + case)
    assert err.where == "cases[1].name"


def test_reference_numpy_must_be_an_expression(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[reference]\nnumpy = "x +"\n')
    assert err.where == "reference.numpy"


def test_reference_module_must_exist(tmp_path):
    err = load_error(tmp_path, MINIMAL + '\n[reference]\nmodule = "ref.py"\n')
    assert err.where == "reference.module"


def test_reference_keys_beyond_the_typed_ones_are_kept(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL + '\n[reference]\nnumpy = "x"\nanything = { a = 1 }\n'))
    assert spec.reference["anything"] == {"a": 1}


def test_description_cannot_close_the_c_comment(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('family = "elementwise"\n',
                                               'family = "elementwise"\ndescription = "a */ b"\n'))
    assert err.where == "kernel.description"


def test_family_name_cannot_be_a_path(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace('"elementwise"', '"../kernels"'))
    assert err.where == "kernel.family"
