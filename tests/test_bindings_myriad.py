"""MYRIAD binding files: parsing the 2021/2022 dialect, every rule that makes the plugin reject a file, hostile
XML, the canonical writer, validate() and select()."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from kernelkit.kernel.bindings import myriad_check, myriad_read, myriad_select, myriad_write
from kernelkit.kernel.bindings.model import (CustomLayer, DataParam, DimRef, Kernel, ScalarParam, TensorParam,
                                             WorkSizes)
from kernelkit.core.errors import KernelkitError

DATA = Path(__file__).parent / "data" / "bindings"

PARAMS = """<Parameters>
            <Tensor arg-name="src" type="input" port-index="0"/>
            <Tensor arg-name="dst" type="output" port-index="0"/>
        </Parameters>"""
SIZES = '<WorkSizes dim="input,0" global="X,Y,1" local="1,1,1"/>'


def layer_xml(body=None, attrs='name="Op" type="MVCL" version="1"', kernel_attrs='entry="k"', params=PARAMS,
              sizes=SIZES, where=""):
    if body is None:
        body = f"""{where}
    <Kernel {kernel_attrs}>
        <Source filename="k.bin"/>
        {params}
        {sizes}
    </Kernel>"""
    return f"<CustomLayer {attrs}>{body}\n</CustomLayer>\n"


def refused(text, tmp_path, name="bindings.xml"):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(KernelkitError) as info:
        myriad_read.load(path)
    error = info.value
    assert error.path == str(path)
    return error


# --- parsing ---------------------------------------------------------------------------------------------

def test_parse_example_with_two_alternatives():
    layers = myriad_read.load(DATA / "scale_shift2.xml")
    assert [l.name for l in layers] == ["ScaleShift2", "scaleshift2"]
    first = layers[0]
    assert first.type == "MVCL" and first.version == 1
    assert first.where == {"mode": "0"}
    assert first.path == DATA / "scale_shift2.xml"
    assert first.line == 3
    kernel = first.kernels[0]
    assert kernel.entry == "scale_shift2" and kernel.sources == ["scale_shift2.bin"] and kernel.max_shaves == 4
    assert kernel.params[0] == TensorParam("src", "input", 0, "BFYX", line=8)
    assert kernel.params[2] == ScalarParam("W", "int", "I.X", 0, line=10)
    assert kernel.params[3] == ScalarParam("alpha", "float", "alpha", None, line=11)
    assert kernel.work_sizes.dim == DimRef("input", 0)
    assert kernel.work_sizes.global_ == ["Y", "F", "B"] and kernel.work_sizes.local == ["1", "1", "1"]
    # lower-case tag, type and format are accepted; formats are stored upper-case
    assert layers[1].kernels[0].params[0].format == "BYXF"


def test_parse_multi_stage_keeps_document_order_and_runs_writers_first():
    layer, = myriad_read.load(DATA / "mvn2.xml")
    assert [k.entry for k in layer.kernels] == ["mvn2_scale", "mvn2_reduce"]
    # the real plugin runs a kernel after the kernels writing the buffers it reads (probes stages.*)
    assert [k.entry for k in myriad_select.run_order(layer)] == ["mvn2_reduce", "mvn2_scale"]
    assert [k.stage for k in myriad_select.run_order(layer)] == [0, 1]
    reduce = layer.kernels[1]
    mean = reduce.params[1]
    assert mean.type == "output_buffer" and mean.dim == DimRef("output", 0) and mean.size == "Y*F*4"
    assert reduce.params[3] == DataParam("row", "local_data", dim=DimRef("input", 0), size="X*2", line=24)
    assert layer.where == {"across_channels": "0", "eps": ">0"}


def test_xml_declaration_and_comments_keep_line_numbers(tmp_path):
    text = '<?xml version="1.0"?>\n<!-- c -->\n\n' + layer_xml()
    path = tmp_path / "b.xml"
    path.write_text(text)
    layer, = myriad_read.load(path)
    assert layer.line == 4


# --- every rejection rule ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message, line", [
    ("<Layer name='x'/>", "is not <CustomLayer>", 1),
    (layer_xml(attrs='name="Op" type="OCL" version="1"'), 'type="OCL" is not MVCL', 1),
    (layer_xml(attrs='type="MVCL" version="1"'), "'name' is required", 1),
    (layer_xml(attrs='name="Op" version="1"'), "'type' is required", 1),
    (layer_xml(attrs='name="Op" type="MVCL"'), "'version' is required", 1),
    (layer_xml(attrs='name="Op" type="MVCL" version="2"'), 'version="2" is not supported', 1),
    (layer_xml(attrs='name="Op" type="MVCL" version="1" max-shaves="x"'), "must be an integer", 1),
    (layer_xml(kernel_attrs='entry="k" max-shaves=""'), "'max-shaves' is empty", 2),
    (layer_xml(params=PARAMS.replace('port-index="0"/>', 'port-index="0" format=""/>', 1)), "'format' is empty", 5),
    (layer_xml(kernel_attrs='max-shaves="1"'), "'entry' is required", 2),
    (layer_xml(params=""), "exactly one <Parameters>, found 0", 2),
    (layer_xml(sizes=SIZES + SIZES), "exactly one <WorkSizes>, found 2", 8),
    (layer_xml(params=PARAMS + PARAMS), "exactly one <Parameters>, found 2", 7),
    (layer_xml(body="\n    <Where a='1'/>"), "has no <Kernel>", 1),
    (layer_xml(sizes=SIZES.replace('dim="input,0" ', "")), "'dim' is required", 8),
    (layer_xml(sizes=SIZES.replace("input,0", "input")), "has no port index", 8),
    (layer_xml(sizes=SIZES.replace("input,0", "weights,0")), "is not 'input,N' or 'output,N'", 8),
    (layer_xml(sizes=SIZES.replace('global="X,Y,1" ', "")), "'global' is required", 8),
    (layer_xml(sizes=SIZES.replace(' local="1,1,1"', "")), "'local' is required", 8),
    (layer_xml(sizes=SIZES.replace("X,Y,1", "X,,1")), "empty dimension", 8),
    (layer_xml(params=PARAMS.replace('type="input"', 'type="weights"')), "is not one of input, output", 5),
    (layer_xml(params=PARAMS.replace('type="input"', 'type="data"')), "never finds its blob", 5),
    (layer_xml(params=PARAMS.replace('type="input" port-index="0"', 'type="input"')), "'port-index' is required", 5),
    (layer_xml(params=PARAMS.replace('type="input" port-index="0"', 'type="input" port-index="a"')),
     "must be an integer", 5),
    (layer_xml(params=PARAMS.replace('port-index="0"/>', 'port-index="0" format="NCHW"/>', 1)),
     'format="NCHW" is not one of', 5),
    (layer_xml(params=PARAMS.replace('port-index="0"/>', 'port-index="0" format="BFXY"/>', 1)), "BFXY", 5),
    (layer_xml(params=PARAMS.replace('port-index="0"/>', 'port-index="1"/>', 2)), "exactly one output, port 0", 6),
    (layer_xml(params=PARAMS.replace('type="input"', 'type="input_buffer"')), "'dim' is required", 5),
    (layer_xml(params=PARAMS.replace('type="input" port-index="0"', 'type="input_buffer" port-index="0" '
                                     'dim="input,0"')), "'size' is required", 5),
    (layer_xml(params='<Parameters><Data arg-name="w" type="data"/></Parameters>'), "exactly one of source=", 4),
    (layer_xml(params='<Parameters><Data arg-name="w" type="data" source="weights" dim="input,0"/></Parameters>'),
     "exactly one of source=", 4),
    (layer_xml(params='<Parameters><Data arg-name="w" type="data" dim="input,0"/></Parameters>'),
     "needs source=", 4),
    (layer_xml(params='<Parameters><Data arg-name="w" type="local_data" source="weights"/></Parameters>'),
     "needs dim= and size=", 4),
    (layer_xml(params='<Parameters><Data arg-name="w" type="local_data" dim="input,0"/></Parameters>'),
     "'size' is required", 4),
    (layer_xml(params='<Parameters><Data arg-name="w" type="blob" source="weights"/></Parameters>'),
     "is not data or local_data", 4),
    (layer_xml(params='<Parameters><Scalar arg-name="s" type="double" source="1"/></Parameters>'),
     "is not int or float", 4),
    (layer_xml(params='<Parameters><Scalar arg-name="s" type="int"/></Parameters>'), "'source' is required", 4),
    (layer_xml(params='<Parameters><Scalar type="int" source="1"/></Parameters>'), "'arg-name' is required", 4),
    (layer_xml(params='<parameters/>'), "case-sensitive", 4),
])
def test_rejection_rules(tmp_path, text, message, line):
    error = refused(text, tmp_path)
    assert message in str(error)
    assert error.line == line
    assert error.where   # names the element


# What the real 2021.4 plugin ignores or reads anyway (probes in docs/binding-verdicts.md): warnings, not refusals.
@pytest.mark.parametrize("text, message, probe", [
    (layer_xml(kernel_attrs='entry="k" max-shaves="-1"'), "negative", "kernel.max-shaves-negative"),
    (layer_xml(where="<Where a='1'/><Where b='1'/>"), "only the first <Where> counts", "parser.two-where-first-holds"),
    (layer_xml(params='<Parameters><Scalar arg-name="s" type="int" source="1"/>'
                      '<Scalar arg-name="s" type="int" source="2"/></Parameters>'), "passes the last",
     "kernel.duplicate-scalar"),
    (layer_xml(params='<Parameters><Buffer arg-name="s"/><Tensor arg-name="dst" type="output" port-index="0"/>'
                      '</Parameters>'), "unknown element <Buffer>", "parser.unknown-element-parameters"),
    (layer_xml(params='<Parameters><tensor arg-name="s" type="input" port-index="0"/>'
                      '<Tensor arg-name="dst" type="output" port-index="0"/></Parameters>'), "case-sensitive",
     "parser.unknown-element-parameters"),
    (layer_xml(params=PARAMS + '<Define name="A"/>'), "unknown element <Define> inside <Kernel>",
     "parser.unknown-element-kernel"),
    (layer_xml(kernel_attrs='entry="k" stage="abc"'), None, "stages.single-with-word"),   # one kernel: not read
])
def test_what_the_plugin_ignores_loads_with_a_warning(text, message, probe):
    layers = myriad_read.loads(text, path="b.xml")
    warnings = [f.message for f in myriad_check.validate(layers) if f.severity == "warning"]
    if message:
        assert any(message in w for w in warnings), (probe, warnings)


def test_more_than_three_work_dimensions_load_and_are_an_error():
    # probe worksizes.four-dims: the plugin accepts and writes all four into the blob
    sizes = SIZES.replace("X,Y,1", "X,Y,1,1").replace("1,1,1", "1,1,1,1")
    layers = myriad_read.loads(layer_xml(sizes=sizes), path="b.xml")
    assert layers[0].kernels[0].work_sizes.global_ == ["X", "Y", "1", "1"]
    errors = [f for f in myriad_check.validate(layers) if f.severity == "error"]
    assert any("4 work dimensions" in f.message and f.plugin is None for f in errors)


def test_stage_numbers(tmp_path):
    def two(stage_a, stage_b):
        kernel = '<Kernel entry="k" {}><Source filename="k.bin"/>' + PARAMS + SIZES + "</Kernel>"
        return layer_xml(body="\n" + kernel.format(stage_a) + "\n" + kernel.format(stage_b))
    assert "'stage' is required" in str(refused(two('stage="0"', ""), tmp_path))
    assert "must be 0..1" in str(refused(two('stage="0"', 'stage="0"'), tmp_path))
    assert "must be 0..1" in str(refused(two('stage="1"', 'stage="2"'), tmp_path))
    assert "is not a number" in str(refused(two('stage="0"', 'stage="x"'), tmp_path))   # stages.word
    path = tmp_path / "ok.xml"
    # the plugin reads stages with strtod and truncates (probes stages.float, stages.trailing-text)
    for second, number in (('stage="1.0"', 1), ('stage="1.5"', 1), ('stage="1x"', 1), ('stage=" 1"', 1)):
        path.write_text(two('stage="0"', second))
        layer = myriad_read.load(path)[0]
        assert [k.stage for k in layer.kernels] == [0, number]


def test_source_required(tmp_path):
    text = layer_xml(body=f"\n    <Kernel entry='k'>{PARAMS}{SIZES}</Kernel>")
    assert "has no <Source" in str(refused(text, tmp_path))
    text = layer_xml(body=f"\n    <Kernel entry='k'><Source/>{PARAMS}{SIZES}</Kernel>")
    assert "'filename' is required" in str(refused(text, tmp_path))


def test_legacy_2020_dialect_is_explained(tmp_path):
    text = """<CustomLayer name="Op" type="MVCL" version="1" stage="0">
    <Kernel entry="k"><Source filename="k.bin"/></Kernel>
    <Parameters><Tensor arg-name="src" type="input" port-index="0"/></Parameters>
    <WorkSizes dim="input" global="X,Y,1" local="1,1,1"/>
</CustomLayer>"""
    error = refused(text, tmp_path)
    assert "2020.x dialect" in str(error) and error.line == 3
    assert "2021/2022 dialect" in error.hint


def test_gpu_file_given_to_myriad_reader(tmp_path):
    error = refused((DATA / "scale_shift2.gpu.xml").read_text(), tmp_path)
    assert "SimpleGPU" in str(error) and "--gpu" in error.hint


def test_file_level_rules(tmp_path):
    assert "no <CustomLayer>" in str(refused("<!-- only a comment -->", tmp_path))
    assert "text outside any element" in str(refused("hello " + layer_xml(), tmp_path))
    assert "text after this element" in str(refused(layer_xml() + " stray", tmp_path))
    assert "malformed XML" in str(refused(layer_xml().replace("</CustomLayer>", ""), tmp_path))
    with pytest.raises(KernelkitError, match="file not found"):
        myriad_read.load(tmp_path / "missing.xml")


# --- hostile XML -------------------------------------------------------------------------------------------

def test_entity_declarations_are_refused(tmp_path):
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                        for i in range(1, 10))
              + ']>\n' + layer_xml(attrs='name="&lol9;" type="MVCL" version="1"'))
    error = refused(laughs, tmp_path)
    assert "DTD or entities" in str(error) and error.line == 2


def test_external_entity_is_refused(tmp_path):
    text = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' + layer_xml(
        attrs='name="&xxe;" type="MVCL" version="1"')
    assert "DTD or entities" in str(refused(text, tmp_path))


def test_undeclared_entity_is_malformed(tmp_path):
    text = layer_xml(attrs='name="&xxe;" type="MVCL" version="1"')
    assert "malformed XML" in str(refused(text, tmp_path))


def test_oversized_file_is_refused_before_parsing(tmp_path):
    text = layer_xml() + "<!--" + "x" * (myriad_read.MAX_BINDINGS_BYTES + 1) + "-->"
    assert "bytes allowed" in str(refused(text, tmp_path))
    with pytest.raises(KernelkitError, match="more than"):
        myriad_read.loads(text)


# --- writer ------------------------------------------------------------------------------------------------

def _without_locations(layers):
    def strip(obj):
        if dataclasses.is_dataclass(obj):
            values = {f.name: strip(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            values.update({k: None for k in ("line", "path") if k in values})
            values.pop("notes", None)
            return values
        if isinstance(obj, list):
            return [strip(x) for x in obj]
        return obj
    return [strip(layer) for layer in layers]


@pytest.mark.parametrize("name", ["scale_shift2.xml", "mvn2.xml"])
def test_round_trip(name):
    layers = myriad_read.load(DATA / name)
    text = myriad_write.dumps(layers)
    assert text.startswith("<!--") and "kernelkit" in text.splitlines()[0]
    again = myriad_read.loads(text)
    assert _without_locations(again) == _without_locations(layers)
    assert myriad_write.dumps(again) == text


def test_writer_escapes_and_keeps_conditions():
    layers = myriad_read.load(DATA / "scale_shift2.xml")
    layers[0].where = {"axis": "<2", "mode": 'a"b&c'}
    layers[0].layer_max_shaves = 2
    again = myriad_read.loads(myriad_write.dumps(layers))
    assert again[0].where == {"axis": "<2", "mode": 'a"b&c'}
    assert again[0].layer_max_shaves == 2


def test_writer_numbers_stages_only_for_multi_stage():
    single = myriad_write.dumps(myriad_read.load(DATA / "scale_shift2.xml"))
    multi = myriad_write.dumps(myriad_read.load(DATA / "mvn2.xml"))
    assert "stage=" not in single
    # document order is kept (the run order comes from stage numbers and buffers)
    assert multi.index('stage="1"') < multi.index('stage="0"')
    assert [k.entry for k in myriad_read.loads(multi)[0].kernels] == ["mvn2_scale", "mvn2_reduce"]


def test_save_is_atomic_and_loadable(tmp_path):
    layers = myriad_read.load(DATA / "mvn2.xml")
    out = myriad_write.save(layers, tmp_path / "out" / "b.xml")
    assert _without_locations(myriad_read.load(out)) == _without_locations(layers)
    assert [p.name for p in out.parent.iterdir()] == ["b.xml"]


# --- select ------------------------------------------------------------------------------------------------

def _alternatives(*wheres_and_formats):
    parts = []
    for index, (where, fmt, sizes) in enumerate(wheres_and_formats):
        params = PARAMS.replace('type="input" port-index="0"', f'type="input" port-index="0" format="{fmt}"')
        parts.append(layer_xml(where=f"<Where {where}/>" if where else "", kernel_attrs=f'entry="k{index}"',
                               params=params, sizes=sizes or SIZES))
    return myriad_read.loads("".join(parts))


def _entry(layer):
    return layer.kernels[0].entry if layer else None


@pytest.mark.parametrize("rule, value, chosen", [
    ('axis=">=2"', "2", "k0"), ('axis=">=2"', "1", None),
    ('axis="&lt;=2"', "2", "k0"), ('axis="&lt;=2"', "3", None),
    ('axis=">2"', "3", "k0"), ('axis=">2"', "2", None),
    ('axis="&lt;2"', "1", "k0"), ('axis="&lt;2"', "2", None),
    ('axis="!=2"', "3", "k0"), ('axis="!=2"', "2", None),
    ('axis="2"', "2.0", "k0"),             # numbers compare as numbers
    ('axis="2"', "3", None),
    ('kernel="3,3"', "3,3", "k0"),         # not a number: string comparison
    ('kernel="3,3"', "1,1", None),
    ('mode="Nearest"', "nearest", "k0"),   # case-insensitive
    ('mode="nearest"', "linear", None),
])
def test_select_where_rules(rule, value, chosen):
    layers = _alternatives((rule, "BFYX", None))
    key = rule.split("=")[0]
    assert _entry(myriad_select.select(layers, "op", {key: value})) == chosen


def test_select_needs_every_where_key_and_all_rules():
    layers = _alternatives(('a="1" b="2"', "BFYX", None), (None, "BFYX", None))
    assert _entry(myriad_select.select(layers, "Op", {"a": "1", "b": "2"})) == "k0"
    assert _entry(myriad_select.select(layers, "Op", {"a": "1", "b": "3"})) == "k1"
    assert _entry(myriad_select.select(layers, "Op", {"a": "1"})) == "k1"
    layer, reasons = myriad_select.select_with_reasons(layers, "Op", {"a": "1"})
    assert "no attribute 'b'" in reasons[0]


def test_select_type_is_case_insensitive_and_must_match():
    layers = _alternatives((None, "BFYX", None))
    assert _entry(myriad_select.select(layers, "OP", {})) == "k0"
    assert myriad_select.select(layers, "Other", {}) is None


def test_select_skips_bindings_whose_size_rules_do_not_parse():
    sizes = '<WorkSizes dim="input,0" global="X/stride,Y,1" local="1,1,1"/>'
    layers = _alternatives((None, "BFYX", sizes), (None, "BFYX", None))
    assert _entry(myriad_select.select(layers, "Op", {"stride": "2"})) == "k0"
    assert _entry(myriad_select.select(layers, "Op", {})) == "k1"
    assert _entry(myriad_select.select(layers, "Op", {"stride": "2,2"})) == "k1"   # not numeric: not a variable


def test_select_prefers_fitting_layout_then_first_suitable():
    layers = _alternatives((None, "BFYX", None), (None, "BYXF", None), (None, "ANY", None))
    assert _entry(myriad_select.select(layers, "Op", {}, ["NCHW"])) == "k0"
    assert _entry(myriad_select.select(layers, "Op", {}, ["NHWC"])) == "k1"
    assert _entry(myriad_select.select(layers, "Op", {}, ["BYXF"])) == "k1"
    assert _entry(myriad_select.select(layers, "Op", {})) == "k0"
    only_hwc = _alternatives((None, "BYXF", None))
    assert _entry(myriad_select.select(only_hwc, "Op", {}, ["NCHW"])) == "k0"   # reorders get inserted


def test_select_converts_attribute_values_like_the_legacy_layer():
    layers = _alternatives(('flag="true" pads="1,1"', "BFYX", None))
    assert _entry(myriad_select.select(layers, "Op", {"flag": True, "pads": [1, 1]})) == "k0"
    assert myriad_select.select(layers, "Op", {"flag": "yes", "pads": [1, 1]}) is None
    # a value that reads as a number against a rule that does not: the plugin's compile fails (where.not-a-number)
    with pytest.raises(KernelkitError, match="cannot read 'true' as one"):
        myriad_select.select(layers, "Op", {"flag": 1, "pads": [1, 1]})


# --- validate ----------------------------------------------------------------------------------------------

def _findings(text, attrs=None):
    return myriad_check.validate(myriad_read.loads(text, path="b.xml"), attrs)


def _messages(findings, severity):
    return [f.message for f in findings if f.severity == severity]


def test_shipped_style_examples_validate_clean():
    assert myriad_check.validate(myriad_read.load(DATA / "scale_shift2.xml"), {"alpha": "0.5", "mode": "0"}) == []
    assert myriad_check.validate(myriad_read.load(DATA / "mvn2.xml"), {"eps": "0.001", "across_channels": "0"}) == []


def test_validate_layer_level_max_shaves_is_ignored():
    findings = _findings(layer_xml(attrs='name="Op" type="MVCL" version="1" max-shaves="4"'))
    assert any("max-shaves on <CustomLayer> is ignored" in m for m in _messages(findings, "warning"))
    assert findings[0].path == "b.xml" and findings[0].line == 1


def test_validate_size_rules():
    sizes = '<WorkSizes dim="input,0" global="X*stride,Y,1" local="1,1,1"/>'
    assert any("numeric attribute" in m for m in _messages(_findings(layer_xml(sizes=sizes)), "warning"))
    errors = _messages(_findings(layer_xml(sizes=sizes), {"other": "1"}), "error")
    assert any("'stride'" in m and "silently skips" in m for m in errors)
    assert _findings(layer_xml(sizes=sizes), {"stride": "2"}) == []
    layers = myriad_read.loads(layer_xml(sizes=sizes))
    assert myriad_check.validate(layers, numeric_attributes=["stride"]) == []
    assert any("'stride'" in f.message and f.severity == "error"
               for f in myriad_check.validate(layers, numeric_attributes=["axis"]))
    # what the plugin's parser refuses skips the binding (probe expr.parse-unclosed) ...
    unclosed = [f for f in _findings(layer_xml(sizes=SIZES.replace("X,Y,1", "(X,Y,1"))) if f.severity == "error"]
    assert any("skips it silently" in f.message and f.plugin == "skips" for f in unclosed)
    # ... what it parses and cannot evaluate fails the compile (probe expr.dangling-operator)
    dangling = [f for f in _findings(layer_xml(sizes=SIZES.replace("X,Y,1", "X+,Y,1"))) if f.severity == "error"]
    assert any("compile fails" in f.message and f.plugin == "rejects" for f in dangling)
    # ... and what it reads in its own way is a warning (probe expr.function-without-parentheses)
    odd = _findings(layer_xml(sizes=SIZES.replace("X,Y,1", "floor X,Y,1")))
    assert [f.severity for f in odd] == ["warning"] and "next value only" in odd[0].message


@pytest.mark.parametrize("global_, local, message, plugin", [
    ("10,1,1", "4,1,1", "not a multiple", None),                     # worksizes.not-multiple: accepted
    ("8,1,1", "0,1,1", "divides by it and crashes", "rejects"),       # worksizes.local-zero
    ("8,1,1", "0-1,1,1", "at least 1", None),
])
def test_validate_constant_work_sizes(global_, local, message, plugin):
    sizes = f'<WorkSizes dim="input,0" global="{global_}" local="{local}"/>'
    errors = [f for f in _findings(layer_xml(sizes=sizes)) if f.severity == "error"]
    assert any(message in f.message and f.plugin == plugin for f in errors), [str(f) for f in errors]


def test_validate_dimension_count_mismatch():
    fewer = _findings(layer_xml(sizes='<WorkSizes dim="input,0" global="X,Y,1" local="1,1"/>'))
    # probe worksizes.local-fewer-dims
    assert any(f.severity == "error" and "crashes" in f.message and f.plugin == "rejects" for f in fewer)
    more = _findings(layer_xml(sizes='<WorkSizes dim="input,0" global="X,Y" local="1,1,1"/>'))
    assert [f.severity for f in more] == ["warning"] and "no group count" in more[0].message    # local-more-dims


@pytest.mark.parametrize("scalar, severity, message", [
    ('source="I.X"', "error", "no port-index"),
    ('source="I.Z" port-index="0"', "error", "not one of B, F, Y, X"),
    ('source="i.X" port-index="0"', "warning", "reads an OUTPUT dimension"),
    ('source="In.X" port-index="0"', "warning", "reads the output dimension"),
    ('source="3" port-index="0"', "error", "must not have a port-index"),
    ('source="2.5"', "error", "holds a '.'"),                      # scalar.int-literal-dot: the plugin crashes
    ('source="25e-1"', "warning", "passed as int 25"),             # scalar.int-literal-negative-exponent
    ('source="0x10"', "warning", "passed as int 0"),               # scalar.int-literal-hex
    ('source="3000000000"', "error", "out of range"),              # scalar.int-literal-out-of-range
    ('source="I.X" port-index="0" type="float"', "warning", "passes it as an int"),   # lookup.type-float
])
def test_validate_scalars(scalar, severity, message):
    kind = "" if "type=" in scalar else 'type="int" '
    params = f'<Parameters><Tensor arg-name="dst" type="output" port-index="0"/>' \
             f'<Scalar arg-name="s" {kind}{scalar}/></Parameters>'
    assert any(message in m for m in _messages(_findings(layer_xml(params=params)), severity))


def test_validate_scalar_sources_against_layer_attributes():
    params = ('<Parameters><Tensor arg-name="dst" type="output" port-index="0"/>'
              '<Scalar arg-name="kw" type="int" source="kernel" port-index="0"/>'
              '<Scalar arg-name="kh" type="int" source="kernel" port-index="1"/>'
              '<Scalar arg-name="g" type="int" source="group"/></Parameters>')
    assert _findings(layer_xml(params=params), {"kernel": "3,3", "group": "1"}) == []
    errors = _messages(_findings(layer_xml(params=params), {"kernel": "3", "group": "1"}), "error")
    assert any("of a comma list" in m and "compile fails" in m for m in errors)     # attr.port-index-on-single-value
    errors = _messages(_findings(layer_xml(params=params), {"kernel": "3,3"}), "error")
    assert any("Unable to deduce parameter" in m for m in errors)
    errors = _messages(_findings(layer_xml(params=params), {"kernel": "3,3", "group": "all"}), "error")
    assert any("does not read as int (not a number)" in m for m in errors)                 # attr.bool-as-int
    warnings = _messages(_findings(layer_xml(params=params), {"kernel": "3,3", "group": "2.75"}), "warning")
    assert any("passed as int 2" in m for m in warnings)                                 # attr.float-as-int


def test_validate_where_against_layer_attributes():
    text = layer_xml(where='<Where axis="1"/>')
    assert any("never selects" in m for m in _messages(_findings(text, {"mode": "a"}), "warning"))
    assert any("does not hold" in m for m in _messages(_findings(text, {"axis": "2"}), "warning"))
    assert _findings(text, {"axis": "1"}) == []


def test_validate_buffers_and_output():
    params = ('<Parameters><Tensor arg-name="m" type="input_buffer" port-index="0" dim="input,0" size="X"/>'
              '<Tensor arg-name="dst" type="output" port-index="0"/></Parameters>')
    assert any("no stage writes it" in m for m in _messages(_findings(layer_xml(params=params)), "error"))
    no_output = '<Parameters><Tensor arg-name="src" type="input" port-index="0"/></Parameters>'
    assert any("never written" in m for m in _messages(_findings(layer_xml(params=no_output)), "error"))


def test_validate_shadowed_alternative():
    text = layer_xml() + layer_xml(kernel_attrs='entry="k2"')
    findings = _findings(text)
    assert any("never chosen" in m for m in _messages(findings, "warning"))
    distinct = layer_xml(where='<Where a="1"/>') + layer_xml(kernel_attrs='entry="k2"')
    assert not any("never chosen" in m for m in _messages(_findings(distinct), "warning"))


def test_validate_reports_unknown_elements_the_plugin_ignores():
    text = layer_xml(body=f"\n    <Comment/>\n    <Kernel entry='k'><Source filename='k.bin'/>{PARAMS}{SIZES}</Kernel>")
    findings = _findings(text)
    assert any("unknown element <Comment>" in m for m in _messages(findings, "warning"))


# --- writer round trip over generated layers ---------------------------------------------------------------


_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_text = st.text(st.one_of(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                         st.sampled_from("\n\t\r<>&\"'")), min_size=1, max_size=12).filter(
    lambda t: t.strip() == t and t != "")
_expr = st.sampled_from(["X", "Y*F", "(X+7)/8*8", "round(Y*factor)", "1", "stride*stride"])
_dim = st.builds(DimRef, st.sampled_from(["input", "output"]), st.integers(0, 3))


def _param(index):
    name = f"a{index}"
    return st.one_of(
        st.builds(TensorParam, st.just(name), st.sampled_from(["input", "output"]), st.just(0),
                  st.sampled_from(["BFYX", "BYXF", "FYX", "YXF", "BF", "ANY"])),
        st.builds(TensorParam, st.just(name), st.sampled_from(["input_buffer", "output_buffer"]),
                  st.integers(0, 3), st.just("BFYX"), _dim, _expr),
        st.builds(DataParam, st.just(name), st.just("data"), source=_text),
        st.builds(DataParam, st.just(name), st.just("local_data"), dim=_dim, size=_expr),
        st.builds(ScalarParam, st.just(name), st.sampled_from(["int", "float"]), _text,
                  st.one_of(st.none(), st.integers(0, 3))),
    )


@st.composite
def _layers(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kernels = []
        count = draw(st.integers(1, 3))
        for stage in range(count):
            params = [draw(_param(i)) for i in range(draw(st.integers(0, 4)))]
            sizes = WorkSizes(draw(_dim), draw(st.lists(_expr, min_size=1, max_size=3)),
                              draw(st.lists(_expr, min_size=1, max_size=3)))
            kernels.append(Kernel(draw(_ident), draw(st.lists(_text, min_size=1, max_size=2)), params, sizes,
                                  stage=stage if count > 1 else 0, max_shaves=draw(st.integers(0, 16))))
        layers.append(CustomLayer(draw(_text), kernels, draw(st.dictionaries(_ident, _text, max_size=3)),
                                  layer_max_shaves=draw(st.one_of(st.none(), st.integers(0, 16)))))
    return layers


@settings(max_examples=60, deadline=None)
@given(_layers())
def test_generated_layers_round_trip(layers):
    assert _without_locations(myriad_read.loads(myriad_write.dumps(layers))) == _without_locations(layers)


# --- the legacy layer the plugin makes of an IR op (probes legacy.*, where.*-attribute, where.bool-*) ----------

def test_a_binding_names_the_legacy_layer_type():
    pooling = myriad_read.loads(layer_xml(attrs='name="Pooling" type="MVCL" version="1"'))
    by_ir_name = myriad_read.loads(layer_xml(attrs='name="MaxPool" type="MVCL" version="1"'))
    assert myriad_select.select(pooling, "MaxPool", {}) is pooling[0]
    chosen, reasons = myriad_select.select_with_reasons(by_ir_name, "MaxPool", {})
    assert chosen is None and "name it 'Pooling'" in reasons[0]
    # ops not listed keep their type
    assert myriad_select.select(myriad_read.loads(layer_xml()), "Op", {}) is not None


def test_attributes_as_the_legacy_layer_holds_them():
    pool = myriad_select.plugin_attrs("MaxPool", {"auto_pad": "explicit", "exclude_pad": True, "kernel": [2, 2]})
    assert pool == {"exclude-pad": "true", "kernel": "2,2", "pool-method": "max"}
    assert myriad_select.plugin_attrs("CumSum", {"exclusive": "1", "reverse": 0}) == \
        {"exclusive": "true", "reverse": "false"}
    assert myriad_select.plugin_attrs("RegionYolo", {"do_softmax": "true"}) == {"do_softmax": "1"}
    once = myriad_select.plugin_attrs("CumSum", {"exclusive": 1})
    assert myriad_select.plugin_attrs("CumSum", once) == {"exclusive": "true"}


def test_run_order_is_stage_numbers_with_buffer_writers_first():
    def kernel(entry, stage, *params):
        return (f'<Kernel entry="{entry}" stage="{stage}"><Source filename="{entry}.bin"/><Parameters>'
                + "".join(params) + '</Parameters><WorkSizes dim="input,0" global="X" local="1"/></Kernel>')
    out = '<Tensor arg-name="y" type="output" port-index="0"/>'
    write = lambda port: f'<Tensor arg-name="b" type="output_buffer" port-index="{port}" dim="input,0" size="X"/>'
    read = lambda port: f'<Tensor arg-name="b{port}" type="input_buffer" port-index="{port}" dim="input,0" size="X"/>'
    text = layer_xml(body=kernel("reader", 0, read(0), read(1), out) + kernel("a", 2, write(0)) + kernel("b", 1, write(1)))
    assert [k.entry for k in myriad_select.run_order(myriad_read.loads(text)[0])] == ["b", "a", "reader"]
