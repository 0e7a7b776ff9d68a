"""Rendering: generated sources follow the SHAVE idioms, bindings bind every argument, and template errors
name the template file and line."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from kernelkit.kernel.bindings import clsource, gpu, myriad_read, myriad_select
from kernelkit.kernel.bindings.model import ScalarParam, TensorParam
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR, TEMPLATES_DIR
from kernelkit.kernel.render import (GPU_SWITCH, c_float, gpu_layer, myriad_layers, render_gpu_xml, render_myriad_xml,
                                     render_source, source_filenames)
from kernelkit.kernel.spec import load_spec

BUNDLED = ["mish_h", "hard_sigmoid_h", "cumsum", "upsample_nearest_h", "reduce_prod_h"]


def custom_kernel(tmp_path: Path, template: str, spec_extra: str = "") -> Path:
    folder = tmp_path / "ck"
    folder.mkdir(exist_ok=True)
    (folder / "kernel.toml").write_text(textwrap.dedent("""
        [kernel]
        name = "ck"
        op = "Ck"
        family = "custom"
        template = "ck.cl.j2"

        [[kernel.inputs]]
        name = "src"

        [kernel.output]
        name = "dst"

        [[kernel.scalars]]
        name = "W"
        type = "int"
        source = "I.X"
        port = 0

        [kernel.work]
        dim = "input,0"
        global = ["8", "Y", "F*B"]
        local = ["8", "1", "1"]
    """) + spec_extra)
    (folder / "ck.cl.j2").write_text(template)
    return folder


GOOD_TEMPLATE = """\
{% import "_skeleton/macros.cl.j2" as kk with context %}
{{ kk.header() }}
{{ kk.signature() }}
{
    const int i = (int)get_global_id(1) * W + min((int)get_local_id(0), W - 1);
    dst[i] = src[i];
}
"""


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sources_follow_the_shave_idioms(name):
    spec = load_spec(KERNELS_DIR / name)
    text = render_source(spec).text
    assert "#pragma OPENCL EXTENSION cl_khr_fp16 : enable" in text
    assert "double" not in text and "return" not in text
    signature = clsource.parse_kernels(text)
    entry = next(k for k in signature if k.name == spec.entry)
    assert all(a.restrict for a in entry.args if a.pointer)
    if spec.family == "elementwise":
        # one item per element over dimension 0, no tail to clamp: the local size divides the element count
        assert "get_global_id(0)" in text and " min(" not in text
    else:
        assert "async_work_group_copy(" in text and "__local half" in text
        # X work size is a multiple of 8 in both the global and local sizes.
        assert spec.work.global_[0] == spec.work.local[0] == "8"


def test_mish_source_uses_the_expression_once_per_element():
    text = render_source(load_spec(KERNELS_DIR / "mish_h")).text
    assert text.count("x * tanh(log(1.0f + exp(x)))") == 1
    assert "__global const half* restrict x" in text and "__global half* restrict y" in text


@pytest.mark.parametrize("name", BUNDLED)
def test_myriad_binding_binds_every_argument_exactly_once(name):
    spec = load_spec(KERNELS_DIR / name)
    args = [a.name for a in next(k for k in clsource.parse_kernels(render_source(spec).text)
                                 if k.name == spec.entry).args]
    for layer in myriad_layers(spec):
        bound = [p.arg_name for p in layer.kernels[0].params]
        assert sorted(bound) == sorted(args)
        assert layer.kernels[0].sources == [f"{spec.name}.bin"]


@pytest.mark.parametrize("name", BUNDLED)
def test_gpu_view_has_only_tensor_arguments(name):
    spec = load_spec(KERNELS_DIR / name)
    text = render_source(spec).text
    gpu_args = next(k for k in clsource.parse_kernels(text, {GPU_SWITCH: 1}) if k.name == spec.entry).args
    assert all(a.pointer and a.address_space == "global" for a in gpu_args)
    layer = gpu_layer(spec)
    assert [t.arg_index for t in layer.tensors] == list(range(len(gpu_args)))
    assert layer.defines[0].name == GPU_SWITCH and layer.sources == [f"{spec.name}.cl"]


def test_xml_round_trips_through_the_binding_parsers():
    spec = load_spec(KERNELS_DIR / "hard_sigmoid_h")
    layers = myriad_read.loads(render_myriad_xml(spec))
    params = {p.arg_name: p for p in layers[0].kernels[0].params}
    assert isinstance(params["alpha"], ScalarParam) and params["alpha"].source == "alpha"
    assert params["alpha"].type == "float" and params["alpha"].port_index is None
    assert "W" not in params     # no shape lookup: those fail on rank-0 tensors
    assert isinstance(params["x"], TensorParam) and params["x"].type == "input"
    assert str(layers[0].kernels[0].work_sizes.dim) == "input,0"
    glayer = gpu.loads(render_gpu_xml(spec))[0]
    defines = {d.name: d for d in glayer.defines}
    assert (defines["alpha"].param, defines["alpha"].default, defines["alpha"].type) == ("alpha", "0.2", "float")


def test_cumsum_alternatives_are_chosen_by_the_layer_attributes():
    layers = myriad_read.loads(render_myriad_xml(load_spec(KERNELS_DIR / "cumsum")))
    assert len(layers) == 4
    for exclusive in (False, True):
        for reverse in (False, True):
            chosen = myriad_select.select(layers, "CumSum", {"exclusive": exclusive, "reverse": reverse})
            scalars = {p.arg_name: p.source for p in chosen.kernels[0].params if isinstance(p, ScalarParam)}
            assert scalars["exclusive"] == str(int(exclusive)) and scalars["reverse"] == str(int(reverse))
            assert scalars["W"] == "I.X" and scalars["C"] == "I.F"
    # The IR's string form is matched case-insensitively, as the plugin does.
    assert myriad_select.select(layers, "cumsum", {"exclusive": "False", "reverse": "TRUE"}) is layers[2]


def test_list_element_and_literal_scalars_get_gpu_macros(tmp_path):
    folder = custom_kernel(tmp_path, GOOD_TEMPLATE.replace("dst[i] = src[i];", "dst[i] = src[i] * KX + ONE;"),
                           '\n[[kernel.scalars]]\nname = "KX"\ntype = "int"\nsource = "kernel"\nport = 1\n'
                           '\n[[kernel.scalars]]\nname = "ONE"\ntype = "float"\nsource = "1.5"\n')
    spec = load_spec(folder)
    text = render_source(spec).text
    assert "#define KX ((int)KX_LIST[1])" in text
    assert "#define ONE (1.5f)" in text
    assert "#define W ((int)INPUT0_DIMS[3])" in text
    glayer = gpu_layer(spec)
    assert [(d.name, d.param, d.type) for d in glayer.defines[1:]] == [("KX_LIST", "kernel", "int[]")]
    params = {p.arg_name: p for p in myriad_layers(spec)[0].kernels[0].params}
    assert (params["KX"].source, params["KX"].port_index) == ("kernel", 1)
    assert (params["ONE"].source, params["ONE"].port_index) == ("1.5", None)


def test_multi_stage_sources_and_binding(tmp_path):
    folder = tmp_path / "ms"
    folder.mkdir()
    (folder / "kernel.toml").write_text(textwrap.dedent("""
        [kernel]
        name = "ms"
        op = "Ms"
        family = "custom"
        template = "ms.cl.j2"
        [[kernel.inputs]]
        name = "x"
        [kernel.output]
        name = "y"
        [[kernel.stages]]
        entry = "ms_sum"
        args = ["x", "partial"]
        dim = "input,0"
        global = ["1", "Y", "F"]
        local = ["1", "1", "1"]
        [[kernel.stages.buffers]]
        name = "partial"
        type = "output_buffer"
        id = 0
        dim = "input,0"
        size = "Y*F*4"
        [[kernel.stages]]
        entry = "ms_scale"
        args = ["x", "partial_in", "y"]
        dim = "input,0"
        global = ["1", "Y", "F"]
        local = ["1", "1", "1"]
        [[kernel.stages.buffers]]
        name = "partial_in"
        type = "input_buffer"
        id = 0
        dim = "input,0"
        size = "Y*F*4"
    """))
    (folder / "ms.cl.j2").write_text('{% import "_skeleton/macros.cl.j2" as kk with context %}\n'
                                     '{{ kk.header() }}\n{{ kk.signature() }}\n{ }\n')
    spec = load_spec(folder)
    assert source_filenames(spec) == ["ms.cl", "ms.stage1.cl"]
    assert "__kernel void ms_scale(" in render_source(spec, 1).text
    assert "__global const float* restrict partial_in" in render_source(spec, 1).text
    layer = myriad_read.loads(render_myriad_xml(spec))[0]
    assert [(k.entry, k.stage, k.sources) for k in layer.kernels] == [("ms_sum", 0, ["ms.bin"]),
                                                                     ("ms_scale", 1, ["ms.stage1.bin"])]
    buffer = next(p for p in layer.kernels[1].params if p.arg_name == "partial_in")
    assert (buffer.type, buffer.port_index, buffer.size) == ("input_buffer", 0, "Y*F*4")
    with pytest.raises(KernelkitError, match="one kernel per layer"):
        gpu_layer(spec)


def test_origin_map_points_at_the_template_line(tmp_path):
    spec = load_spec(custom_kernel(tmp_path, GOOD_TEMPLATE))
    rendered = render_source(spec)
    lines = rendered.text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "dst[i] = src[i];" in line)
    path, line = rendered.origin(number, 5)
    assert path.endswith("ck.cl.j2") and line == 6
    # The signature comes from the skeleton macros.
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("__kernel void ck("))
    path, _ = rendered.origin(number, 1)
    assert Path(path) == TEMPLATES_DIR / "_skeleton" / "macros.cl.j2"


def test_template_syntax_error_names_file_and_line(tmp_path):
    spec = load_spec(custom_kernel(tmp_path, GOOD_TEMPLATE.replace("{{ kk.signature() }}",
                                                                   "{{ kk.signature( }}")))
    with pytest.raises(KernelkitError) as info:
        render_source(spec)
    assert info.value.path.endswith("ck.cl.j2") and info.value.line == 3
    assert "syntax" in info.value.message


def test_undefined_template_value_names_file_and_line(tmp_path):
    spec = load_spec(custom_kernel(tmp_path, GOOD_TEMPLATE.replace("dst[i] = src[i];",
                                                                   "dst[i] = src[i] * {{ params.gain }};")))
    with pytest.raises(KernelkitError) as info:
        render_source(spec)
    assert info.value.path.endswith("ck.cl.j2") and info.value.line == 6
    assert "gain" in info.value.message


def test_family_template_refusal_names_the_family_template(tmp_path):
    spec = load_spec(KERNELS_DIR / "cumsum")
    spec.params["axis_from"] = "sideways"
    with pytest.raises(KernelkitError) as info:
        render_source(spec)
    assert Path(info.value.path) == TEMPLATES_DIR / "axis_scan" / "kernel.cl.j2"
    source = (TEMPLATES_DIR / "axis_scan" / "kernel.cl.j2").read_text().splitlines()
    assert "fail(" in source[info.value.line - 1]


def test_c_float_literals():
    assert c_float(0.2) == "0.2f" and c_float(3) == "3.0f" and c_float(1e-8) == "1e-08f"
    assert c_float(float("inf")) == "INFINITY"
    assert re.fullmatch(r"[-\d.e]+f", c_float(-2.5))
