"""Intel GPU (SimpleGPU) binding files: parse, reject, validate, write, cross-check."""

import dataclasses
from pathlib import Path

import pytest

from kernelkit.kernel.bindings import crosscheck, gpu
from kernelkit.kernel.bindings.model import GpuDefine, GpuTensor
from kernelkit.core.errors import KernelkitError

DATA = Path(__file__).parent / "data" / "bindings"


def gpu_xml(buffers='<Tensor arg-index="0" type="input" port-index="0"/>'
                    '<Tensor arg-index="1" type="output" port-index="0"/>',
            sizes='<WorkSizes global="X,Y,B*F"/>', attrs='name="Op" type="SimpleGPU" version="1"', extra=""):
    return (f'<CustomLayer {attrs}>\n<Kernel entry="k">\n<Source filename="k.cl"/>\n</Kernel>\n'
            f'<Buffers>\n{buffers}\n</Buffers>\n{sizes}\n{extra}</CustomLayer>\n')


def test_parse_example():
    layer, = gpu.load(DATA / "scale_shift2.gpu.xml")
    assert (layer.name, layer.entry, layer.sources) == ("ScaleShift2", "scale_shift2_gpu", ["scale_shift2_gpu.cl"])
    assert layer.defines == [GpuDefine("ALPHA", "alpha", "float", "1.0"), GpuDefine("BETA", None, "float", "0.0")]
    assert layer.tensors == [GpuTensor(0, "input", 0, "BFYX"), GpuTensor(1, "output", 0, "BFYX")]
    assert (layer.global_, layer.local, layer.dim) == (["X", "Y", "B*F"], [], "output")
    assert layer.compiler_options == "-cl-mad-enable"
    assert gpu.validate([layer]) == []


@pytest.mark.parametrize("text, message", [
    (gpu_xml(attrs='name="Op" type="MVCL" version="1"'), "validate it without --gpu"),
    (gpu_xml(attrs='name="Op" type="simplegpu" version="1"'), "exact case"),
    (gpu_xml(attrs='name="Op" type="SimpleGPU" version="2"'), "version"),
    (gpu_xml(buffers='<Data arg-index="0" name="weights"/>'), "<Data> buffers"),
    (gpu_xml(buffers='<Tensor arg-index="0" type="weights" port-index="0"/>'), "not input or output"),
    (gpu_xml(buffers='<Tensor arg-index="0" type="input" port-index="0" format="FYX"/>'), "not one of"),
    (gpu_xml(buffers='<Tensor arg-index="x" type="input" port-index="0"/>'), "non-negative integer"),
    (gpu_xml(sizes='<WorkSizes global="X" dim="input 1"/>'), "input,N"),
    (gpu_xml(sizes='<WorkSizes global="X" dim="output,0"/>'), "not output, input or input,N"),
    (gpu_xml(sizes='<WorkSizes global="X,Y,F,B"/>'), "at most 3"),
    (gpu_xml().replace("<Buffers>", "<Buffer>").replace("</Buffers>", "</Buffer>"), "has no <Buffers>"),
    (gpu_xml().replace('<Source filename="k.cl"/>', ""), "has no <Source"),
    (gpu_xml(extra="<Kernel entry='b'/>"), "more than one <Kernel>"),
])
def test_rejections(tmp_path, text, message):
    path = tmp_path / "g.xml"
    path.write_text(text)
    with pytest.raises(KernelkitError) as info:
        gpu.load(path)
    assert message in str(info.value) and info.value.path == str(path) and info.value.line


def test_dim_input_index_is_kept():
    layer, = gpu.loads(gpu_xml(sizes='<WorkSizes global="X" dim="input,1"/>'))
    assert layer.dim == "input,1"


@pytest.mark.parametrize("text, message", [
    (gpu_xml(buffers='<Tensor arg-index="0" type="input" port-index="0"/><Tensor arg-index="2" type="output" '
                     'port-index="0"/>'), "must run 0..1"),
    (gpu_xml(buffers='<Tensor arg-index="0" type="input" port-index="0"/><Tensor arg-index="0" type="output" '
                     'port-index="0"/>'), "repeat"),
    (gpu_xml(buffers='<Tensor arg-index="0" type="input" port-index="0"/>'), "0 output tensors"),
    (gpu_xml(buffers='<Tensor arg-index="0" type="output" port-index="1"/>'), "the only output is port 0"),
    (gpu_xml(sizes='<WorkSizes global="round(X)"/>'), "functions such as round()"),
    (gpu_xml(sizes='<WorkSizes global="X*stride"/>'), "cannot use layer attributes"),
    (gpu_xml(sizes='<WorkSizes global="X*0.5"/>'), "not an integer"),
    (gpu_xml(sizes='<WorkSizes global="x"/>'), "not one of B, F, Y, X"),
    (gpu_xml(sizes='<WorkSizes global="X" local="-1"/>'), "no unary minus"),
])
def test_validate_errors(text, message):
    found = gpu.validate(gpu.loads(text))
    assert any(f.severity == "error" and message in f.message for f in found), [str(f) for f in found]


def test_validate_warnings():
    found = gpu.validate(gpu.loads(gpu_xml(sizes="") + gpu_xml()))
    messages = [f.message for f in found if f.severity == "warning"]
    assert any("no global work size" in m for m in messages)
    assert any("keeps only the last one" in m for m in messages)
    extra = '<CompilerOptions options="-a"/><CompilerOptions options="-b"/>'
    found = gpu.validate(gpu.loads(gpu_xml(extra=extra)))
    assert any("only the first <CompilerOptions>" in f.message for f in found)


def test_work_size_evaluation_uses_integer_arithmetic():
    assert gpu.evaluate_work_size("(X+7)/8*8", [1, 3, 5, 13]) == 16
    assert gpu.evaluate_work_size("B*F", [2, 3, 4, 5]) == 6
    with pytest.raises(KernelkitError, match="functions"):
        gpu.evaluate_work_size("ceil(X)", [1, 1, 1, 1])


def test_round_trip():
    layers = gpu.load(DATA / "scale_shift2.gpu.xml")
    text = gpu.dumps(layers)
    again = gpu.loads(text)
    assert [dataclasses.replace(l, path=None, line=None) for l in again] == \
        [dataclasses.replace(l, path=None, line=None) for l in layers]
    assert gpu.dumps(again) == text and text.startswith("<!--")


def test_crosscheck_against_source():
    layer, = gpu.load(DATA / "scale_shift2.gpu.xml")
    source = (DATA / "scale_shift2_gpu.cl").read_text()
    assert crosscheck.check_gpu(layer, source) == []
    wrong = source.replace("__global OUTPUT0_TYPE* output", "__global const OUTPUT0_TYPE* output")
    assert any("read-only" in f.message for f in crosscheck.check_gpu(layer, wrong))
    extra = source.replace("__global OUTPUT0_TYPE* output)", "__global OUTPUT0_TYPE* output, int n)")
    assert any("has 3 arguments" in f.message for f in crosscheck.check_gpu(layer, extra))
    assert any("not a __kernel function" in f.message
               for f in crosscheck.check_gpu(layer, source.replace("scale_shift2_gpu", "other")))
