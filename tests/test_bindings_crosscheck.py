"""A MYRIAD binding against the kernel source it names."""

from pathlib import Path

import pytest

from kernelkit.kernel.bindings import crosscheck, myriad_read

DATA = Path(__file__).parent / "data" / "bindings"

GOOD_SOURCE = """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void k(__global const half *restrict src, __global half *restrict dst, __local half *tile,
                int width, float alpha)
{
}
"""
GOOD_PARAMS = """
    <Tensor arg-name="src" type="input" port-index="0"/>
    <Tensor arg-name="dst" type="output" port-index="0"/>
    <Data arg-name="tile" type="local_data" dim="input,0" size="X*2"/>
    <Scalar arg-name="width" type="int" source="I.X" port-index="0"/>
    <Scalar arg-name="alpha" type="float" source="alpha"/>"""


def binding(params=GOOD_PARAMS, entry="k"):
    text = f"""<CustomLayer name="Op" type="MVCL" version="1">
  <Kernel entry="{entry}">
    <Source filename="k.bin"/>
    <Parameters>{params}
    </Parameters>
    <WorkSizes dim="input,0" global="1,Y,F" local="1,1,1"/>
  </Kernel>
</CustomLayer>"""
    return myriad_read.loads(text, path="k.xml")[0]


def findings(params=GOOD_PARAMS, source=GOOD_SOURCE, entry="k"):
    return crosscheck.check(binding(params, entry), {entry: source}, source_paths={entry: "k.cl"})


def only(found, severity, text):
    hits = [f for f in found if f.severity == severity and text in f.message]
    assert hits, [str(f) for f in found]
    return hits[0]


def test_good_binding_is_clean():
    assert findings() == []


@pytest.mark.parametrize("name", ["scale_shift2.xml", "mvn2.xml"])
def test_example_bindings_match_their_sources(name):
    layer = myriad_read.load(DATA / name)[0]
    texts = {k.entry: (DATA / f"{k.entry}.cl").read_text() for k in layer.kernels}
    paths = {k.entry: DATA / f"{k.entry}.cl" for k in layer.kernels}
    assert crosscheck.check(layer, texts, source_paths=paths) == []


def test_missing_binding_is_an_error_on_the_kernel():
    found = findings(GOOD_PARAMS.replace('<Scalar arg-name="alpha" type="float" source="alpha"/>', ""))
    finding = only(found, "error", "'alpha'")
    assert "no binding" in finding.message and finding.path == "k.xml" and finding.line == 2


def test_case_mismatch_gets_a_hint():
    found = findings(GOOD_PARAMS.replace('arg-name="width"', 'arg-name="Width"'))
    assert "differs only in case" in only(found, "error", "'width'").hint


def test_extra_scalar_and_input_warn_extra_output_errors():
    # the real plugin accepts a binding that names no kernel argument (probes kernel.unknown-arg-name*);
    # an output bound that way is never written
    extra = GOOD_PARAMS + '<Scalar arg-name="unused" type="int" source="1"/>'
    assert only(findings(extra), "warning", "ignores it").line == 9
    extra = GOOD_PARAMS + '<Tensor arg-name="weights" type="input" port-index="1"/>'
    only(findings(extra), "warning", "the kernel never reads it")
    misnamed = GOOD_PARAMS.replace('<Tensor arg-name="dst" type="output"', '<Tensor arg-name="dest" type="output"')
    only(findings(misnamed), "error", "nothing writes output 0")


@pytest.mark.parametrize("old, new, severity, text", [
    ('name="width" type="int"', 'name="width" type="float"', "error", '<Scalar type="float"> bound to \'int width\''),
    ('name="alpha" type="float"', 'name="alpha" type="int"', "error", '<Scalar type="int"> bound to'),
    ('<Tensor arg-name="src" type="input" port-index="0"/>', '<Scalar arg-name="src" type="int" source="1"/>',
     "error", "bound to pointer argument"),
    ('<Scalar arg-name="width" type="int" source="I.X" port-index="0"/>',
     '<Tensor arg-name="width" type="input" port-index="1"/>', "error", "must bind a __global pointer"),
    ('<Data arg-name="tile" type="local_data" dim="input,0" size="X*2"/>',
     '<Tensor arg-name="tile" type="input" port-index="1"/>', "error", "bound to __local pointer"),
    ('<Tensor arg-name="src" type="input" port-index="0"/>',
     '<Data arg-name="src" type="local_data" dim="input,0" size="X"/>', "error", "must bind a __local pointer"),
])
def test_type_mismatches(old, new, severity, text):
    params = GOOD_PARAMS.replace(old, new)
    assert params != GOOD_PARAMS
    only(findings(params), severity, text)


def test_output_bound_to_const_pointer():
    source = GOOD_SOURCE.replace("__global half *restrict dst", "__global const half *restrict dst")
    only(findings(source=source), "error", "read-only")


def test_float_tensor_warns_fp16():
    source = GOOD_SOURCE.replace("__global const half *restrict src", "__global const float *restrict src")
    only(findings(source=source), "warning", "FP16")


def test_narrow_int_scalar_warns():
    only(findings(source=GOOD_SOURCE.replace("int width", "short width")), "warning", "32-bit int")


def test_vector_scalar_is_an_error():
    only(findings(source=GOOD_SOURCE.replace("float alpha", "float4 alpha")), "error", "vector argument")


def test_entry_missing_or_misspelled():
    found = findings(entry="K")
    finding = only(found, "error", "entry 'K' is not a __kernel function")
    assert "case-sensitive" in finding.hint and finding.path == "k.xml"


def test_two_entry_points_in_one_file():
    source = GOOD_SOURCE + "\n__kernel void other(__global half *p) {}\n"
    finding = only(findings(source=source), "error", "exactly one per binary")
    assert finding.path == "k.cl" and finding.line == 7


def test_dma_companions_are_allowed_and_must_match():
    companion = GOOD_SOURCE.replace("void k(", "void __dma_preload_k(")
    assert findings(source=GOOD_SOURCE + companion.split("\n", 1)[1]) == []
    wrong = companion.replace("float alpha", "float beta")
    finding = only(findings(source=GOOD_SOURCE + wrong.split("\n", 1)[1]), "error", "exactly the parameter list")
    assert finding.path == "k.cl" and finding.line == 6


def test_unreadable_parameters_are_reported():
    source = "#define ARGS __global half *src\n__kernel void k(ARGS, __global half *dst) {}\n"
    found = crosscheck.check(binding('<Tensor arg-name="src" type="input" port-index="0"/>'
                                     '<Tensor arg-name="dst" type="output" port-index="0"/>'),
                             {"k": source}, source_paths={"k": "k.cl"}, preprocessor=False)
    assert [f.severity for f in found] == ["warning"] and "ARGS" in found[0].message


def test_kernels_without_source_are_skipped():
    assert crosscheck.check(binding(), {}) == []
