#!/usr/bin/env python3
"""Ask the real MYRIAD plugin (OpenVINO 2021.4.2) what it makes of custom-layer bindings, rule by rule.

One probe per rule the binding parser, validator, lint and emulator enforce or warn about: a small binding
(usually one kernel with two tensors and two scalars) bound to a layer the 2021.4 IR reader knows, put through
`kernelkit.doctor.plugin_check` (metadata-only kernel ELFs, a real compile, the blob's Custom stages read
back). Each probe records the plugin's verdict (accepted / rejected / skipped, its message, what the blob
holds), kernelkit's reading of the same binding (parser, validator, emulator plan) and whether the two agree:
the same verdict and, when accepted, the emulator launching exactly what the blob holds. It writes

  kernelkit/facts/data/binding-verdicts-2021.4.json   (probes, bindings, verdicts; read by the tests)
  docs/binding-verdicts.md                             (the table)

    .venv/bin/python toolchain/probe_bindings.py [--jobs 4] [--only REGEX] [--baseline]

`--baseline` records kernelkit's current reading as the "before" column; other runs keep the recorded one.
Needs `kernelkit toolchain setup`. A probe takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JSON_OUT = REPO / "kernelkit" / "facts" / "data" / "binding-verdicts-2021.4.json"
MD_OUT = REPO / "docs" / "binding-verdicts.md"
BASELINE = "29db856"        # the commit whose reading the "before" column holds (recorded with --baseline)

# --------------------------------------------------------------------------------------- kernel sources
SOURCES = {
    "probe.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void probe(__global const half* restrict x, __global half* restrict y, int n, float a)
{
    int i = get_global_id(0);
    y[i] = x[i];
}
""",
    "two.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void probe(__global const half* restrict x, __global half* restrict y, int n, float a)
{
    int i = get_global_id(0);
    y[i] = x[i];
}
__kernel void other(__global const half* restrict x, __global half* restrict y)
{
    int i = get_global_id(0);
    y[i] = x[i];
}
""",
    "weighted.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void probe(__global const half* restrict x, __global half* restrict y, __global const half* restrict w)
{
    int i = get_global_id(0);
    y[i] = x[i] * w[0];
}
""",
    # two stages: s0 writes a scratch buffer (with a __local argument), s1 reads it
    "s0.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void s0(__global const half* restrict x, __global float* restrict buf, __local half* restrict tmp)
{
    int i = get_global_id(0);
    buf[i] = x[i];
}
""",
    "s1.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void s1(__global const float* restrict buf, __global half* restrict y)
{
    int i = get_global_id(0);
    y[i] = buf[i];
}
""",
    # three stages: sa and sb each write a buffer, s2 reads both
    "sa.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void sa(__global const half* restrict x, __global float* restrict buf)
{
    int i = get_global_id(0);
    buf[i] = x[i];
}
""",
    "sb.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void sb(__global const half* restrict x, __global float* restrict buf)
{
    int i = get_global_id(0);
    buf[i] = x[i];
}
""",
    "s2.cl": """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void s2(__global const float* restrict b0, __global const float* restrict b1, __global half* restrict y)
{
    int i = get_global_id(0);
    y[i] = b0[i] + b1[i];
}
""",
}


# ------------------------------------------------------------------------------------------- the probes
@dataclass
class Layer:
    """The one layer the check IR holds: its IR type and version, inputs, attributes, outputs."""

    type: str = "Sinh"
    version: str = "opset1"
    inputs: list = field(default_factory=lambda: [[[1, 3, 8, 6], "f16", None]])   # [shape, type, const value]
    attrs: dict = field(default_factory=dict)
    outputs: list | None = None          # default: input 0's shape


@dataclass
class Probe:
    id: str
    group: str
    rule: str
    xml: str
    layer: Layer = field(default_factory=Layer)


PROBES: list[Probe] = []
S4 = [[1, 3, 8, 6], "f16", None]


def probe(id, group, rule, xml, **layer):
    PROBES.append(Probe(id, group, rule, xml, Layer(**layer)))


def binding(name="Sinh", *, where="", layer_attrs="", kernel_attrs="", entry="probe", source="probe.bin",
            fin="BFYX", fout="BFYX", n='type="int" port-index="0" source="I.X"', a='type="float" source="1"',
            extra="", dim="input,0", g="X,Y,F", l="1,1,1", params=None, worksizes=None):
    """The base binding: probe(x, y, int n, float a) on one stage; every part can be replaced."""
    if params is None:
        params = [f'<Tensor arg-name="x" type="input" port-index="0" format="{fin}"/>',
                  f'<Tensor arg-name="y" type="output" port-index="0" format="{fout}"/>']
        params += [f'<Scalar arg-name="n" {n}/>'] if n else []
        params += [f'<Scalar arg-name="a" {a}/>'] if a else []
    params = params + ([extra] if extra else [])
    ws = worksizes if worksizes is not None else f'<WorkSizes dim="{dim}" global="{g}" local="{l}"/>'
    body = "\n".join(f"            {p}" for p in params)
    return (f'<CustomLayer name="{name}" type="MVCL" version="1"{layer_attrs}>\n'
            + (f"    {where}\n" if where else "")
            + f'    <Kernel entry="{entry}"{kernel_attrs}>\n        <Source filename="{source}"/>\n'
            f"        <Parameters>\n{body}\n        </Parameters>\n        {ws}\n    </Kernel>\n</CustomLayer>\n")


def kernel(entry, stage, *params, g="X*Y*F", l="1", extra=""):
    stage_attr = f' stage="{stage}"' if stage is not None else ""
    body = "\n".join(f"            {p}" for p in params)
    return (f'    <Kernel entry="{entry}"{stage_attr}{extra}>\n        <Source filename="{entry}.bin"/>\n'
            f"        <Parameters>\n{body}\n        </Parameters>\n"
            f'        <WorkSizes dim="input,0" global="{g}" local="{l}"/>\n    </Kernel>\n')


def layer_of(*kernels, name="Sinh"):
    return f'<CustomLayer name="{name}" type="MVCL" version="1">\n' + "".join(kernels) + "</CustomLayer>\n"


X_IN = '<Tensor arg-name="x" type="input" port-index="0" format="BFYX"/>'
Y_OUT = '<Tensor arg-name="y" type="output" port-index="0" format="BFYX"/>'


def buf(arg, kind, port, size="X*Y*F*4", dim="input,0"):
    return f'<Tensor arg-name="{arg}" type="{kind}" port-index="{port}" dim="{dim}" size="{size}"/>'


def two_stages(s0="0", s1="1", *, port0="0", port1=None, size0="X*Y*F*4", size1=None, dim="input,0",
               local="X*2", extra0="", extra1=""):
    return layer_of(
        kernel("s0", s0, X_IN, buf("buf", "output_buffer", port0, size0, dim),
               f'<Data arg-name="tmp" type="local_data" dim="input,0" size="{local}"/>', extra=extra0),
        kernel("s1", s1, buf("buf", "input_buffer", port1 or port0, size1 or size0, dim), Y_OUT, extra=extra1))


def three_stages(order, stages):
    """sa writes buffer 0, sb buffer 1, s2 reads both; `order` is the document order, `stages` their numbers."""
    made = {"sa": kernel("sa", stages["sa"], X_IN, buf("buf", "output_buffer", 0)),
            "sb": kernel("sb", stages["sb"], X_IN, buf("buf", "output_buffer", 1)),
            "s2": kernel("s2", stages["s2"], buf("b0", "input_buffer", 0), buf("b1", "input_buffer", 1), Y_OUT)}
    return layer_of(*(made[k] for k in order))


CLEAN = binding()
# Layers with attributes the reader knows and the plugin parses itself (a skipped binding compiles natively).
ELU = dict(type="Elu", attrs={"alpha": "0.5"})
SOFTMAX = dict(type="Softmax", attrs={"axis": "1"})
CLAMP = dict(type="Clamp", attrs={"min": "-0.5", "max": "0.5"})
POOL_ATTRS = {"strides": "2,3", "pads_begin": "0,0", "pads_end": "0,0", "kernel": "2,3", "rounding_type": "floor",
              "auto_pad": "explicit"}
MAXPOOL = dict(type="MaxPool", attrs=POOL_ATTRS, outputs=[[1, 3, 4, 2]])
# CumSum-3: bool attributes; the plugin has no CumSum of its own (a skipped binding is refused).
CUMSUM = dict(type="CumSum", version="opset3", inputs=[S4, [[1, 1], "i32", [[1]]]],
              attrs={"exclusive": "false", "reverse": "false"})
# ReduceProd keeps_dims over X: the output differs from the input, so i.X / O.X show which they read.
REDUCE = dict(type="ReduceProd", inputs=[S4, [[1, 1], "i64", [[3]]]], attrs={"keep_dims": "true"},
              outputs=[[1, 3, 8, 1]])

probe("control.clean", "control", "a clean binding: two tensors, an I.X scalar, a literal scalar", CLEAN)

# --- the file and its elements
probe("parser.empty-attribute", "parser", "an empty attribute anywhere in <CustomLayer>",
      binding(kernel_attrs=' foo=""'))
probe("parser.type-gpu", "parser", "type=\"SimpleGPU\" on a MYRIAD binding", CLEAN.replace('"MVCL"', '"SimpleGPU"'))
probe("parser.type-lowercase", "parser", "type=\"mvcl\" (compared without case)", CLEAN.replace('"MVCL"', '"mvcl"'))
probe("parser.version-2", "parser", "version=\"2\"", CLEAN.replace('version="1"', 'version="2"'))
probe("parser.name-case", "parser", "name=\"SINH\" for a Sinh layer (compared without case)",
      CLEAN.replace('name="Sinh"', 'name="SINH"'))
probe("parser.customlayer-lowercase", "parser", "<customlayer> (the top-level name is compared without case)",
      CLEAN.replace("CustomLayer", "customlayer"))
probe("parser.kernel-lowercase", "parser", "<kernel> instead of <Kernel>",
      CLEAN.replace("<Kernel", "<kernel").replace("</Kernel", "</kernel"))
probe("parser.unknown-element-customlayer", "parser", "an unknown element inside <CustomLayer>",
      binding(where="<Foo/>"))
probe("parser.unknown-element-kernel", "parser", "an unknown element inside <Kernel>",
      CLEAN.replace("<Parameters>", "<Foo/>\n        <Parameters>"))
probe("parser.unknown-element-parameters", "parser", "an unknown element inside <Parameters>",
      binding(extra="<Foo/>"))
probe("parser.no-source", "parser", "a <Kernel> without <Source>", CLEAN.replace('<Source filename="probe.bin"/>', ""))
probe("parser.two-worksizes", "parser", "two <WorkSizes> in one <Kernel>",
      CLEAN.replace("</Parameters>", '</Parameters>\n        <WorkSizes dim="input,0" global="X" local="1"/>'))
probe("parser.no-worksizes", "parser", "no <WorkSizes>", binding(worksizes=""))
probe("parser.no-local", "parser", "<WorkSizes> without local", binding(worksizes='<WorkSizes dim="input,0" global="X,Y,F"/>'))
probe("parser.two-where-first-holds", "parser", "two <Where>: the first holds, the second does not",
      binding("Elu", where='<Where alpha="0.5"/><Where alpha="0.7"/>'), **ELU)
probe("parser.two-where-first-fails", "parser", "two <Where>: the first does not hold, the second does",
      binding("Elu", where='<Where alpha="0.7"/><Where alpha="0.5"/>'), **ELU)

# --- kernel entry and argument binding
probe("kernel.entry-missing", "kernel", "entry names no kernel of the binary", binding(entry="nothere"))
probe("kernel.entry-case", "kernel", "entry differs from the kernel's name only in case", binding(entry="Probe"))
probe("kernel.two-kernels-in-source", "kernel", "the source (so the binary) holds two __kernel functions",
      binding(source="two.bin"))
probe("kernel.unknown-arg-name", "kernel", "a <Scalar> whose arg-name is no kernel argument",
      binding(extra='<Scalar arg-name="zz" type="int" source="1"/>'))
probe("kernel.unknown-arg-name-tensor", "kernel", "a <Tensor type=\"input\"> whose arg-name is no kernel argument",
      binding(extra='<Tensor arg-name="zz" type="input" port-index="0" format="BFYX"/>'))
probe("kernel.unbound-argument", "kernel", "a kernel argument without a binding", binding(a=""))
probe("kernel.arg-name-case", "kernel", "arg-name differs from the argument only in case",
      binding(a='type="float" source="1"').replace('arg-name="a"', 'arg-name="A"'))
probe("kernel.duplicate-scalar", "kernel", "one argument bound twice by <Scalar> (source 1, then 2)",
      binding(extra='<Scalar arg-name="a" type="float" source="2"/>'))
probe("kernel.duplicate-tensor", "kernel", "one argument bound twice by <Tensor type=\"input\">",
      binding(source="weighted.bin", n="", a="", extra='<Tensor arg-name="w" type="input" port-index="0" format="BFYX"/>'
              '<Tensor arg-name="w" type="input" port-index="0" format="BF"/>'))
probe("kernel.input-bound-twice", "kernel", "input 0 bound to two arguments",
      binding(source="weighted.bin", n="", a="", extra='<Tensor arg-name="w" type="input" port-index="0" format="BFYX"/>'))
probe("kernel.output-bound-twice", "kernel", "output 0 bound to two arguments of one kernel",
      binding(source="weighted.bin", n="", a="", extra='<Tensor arg-name="w" type="output" port-index="0" format="BFYX"/>'))
probe("kernel.scalar-type-double", "kernel", "<Scalar type=\"double\">", binding(a='type="double" source="1"'))
probe("kernel.scalar-type-uppercase", "kernel", "<Scalar type=\"INT\">", binding(n='type="INT" port-index="0" source="I.X"'))
probe("kernel.tensor-type-uppercase", "kernel", "<Tensor type=\"INPUT\">", CLEAN.replace('type="input"', 'type="INPUT"'))
probe("kernel.tensor-no-port-index", "kernel", "<Tensor> without port-index",
      CLEAN.replace('type="input" port-index="0"', 'type="input"'))
probe("kernel.input-port-missing", "kernel", "<Tensor type=\"input\" port-index=\"1\"> on a one-input layer",
      CLEAN.replace('type="input" port-index="0"', 'type="input" port-index="1"'))
probe("kernel.output-port-1", "kernel", "<Tensor type=\"output\" port-index=\"1\">",
      CLEAN.replace('type="output" port-index="0"', 'type="output" port-index="1"'))
probe("kernel.tensor-type-data", "kernel", "<Tensor type=\"data\">",
      CLEAN.replace('type="input" port-index="0"', 'type="data" port-index="0"'))
probe("kernel.max-shaves-4", "kernel", "max-shaves=\"4\" on <Kernel> (the blob's max-shaves)", binding(kernel_attrs=' max-shaves="4"'))
probe("kernel.max-shaves-20", "kernel", "max-shaves=\"20\", more than the 16 SHAVEs", binding(kernel_attrs=' max-shaves="20"'))
probe("kernel.max-shaves-negative", "kernel", "max-shaves=\"-1\"", binding(kernel_attrs=' max-shaves="-1"'))
probe("kernel.max-shaves-not-a-number", "kernel", "max-shaves=\"abc\"", binding(kernel_attrs=' max-shaves="abc"'))
probe("kernel.max-shaves-on-customlayer", "kernel", "max-shaves=\"3\" on <CustomLayer> (the blob's max-shaves)",
      binding(layer_attrs=' max-shaves="3"'))
probe("kernel.two-outputs", "kernel", "a layer with two outputs (Split)", binding("Split", fin="BF", fout="BF", g="X", l="1"),
      type="Split", inputs=[S4, [[], "i64", 3]], attrs={"num_splits": "2"}, outputs=[[1, 3, 8, 3], [1, 3, 8, 3]])

# --- scalar literals
for pid, rule, n, a in (
        ("int-literal", "an int literal", 'type="int" source="3"', None),
        ("int-literal-port-index", "an int literal with port-index", 'type="int" port-index="0" source="3"', None),
        ("int-literal-exponent", "int literal 3e0", 'type="int" source="3e0"', None),
        ("int-literal-negative-exponent", "int literal 25e-1", 'type="int" source="25e-1"', None),
        ("int-literal-dot", "int literal 2.5 (a '.')", 'type="int" source="2.5"', None),
        ("int-literal-negative", "int literal -7", 'type="int" source="-7"', None),
        ("int-literal-hex", "int literal 0x10", 'type="int" source="0x10"', None),
        ("int-literal-out-of-range", "int literal 3000000000", 'type="int" source="3000000000"', None),
        ("float-literal-integer", "float literal 2", None, 'type="float" source="2"'),
        ("float-literal-exponent", "float literal 5e-1 (no '.')", None, 'type="float" source="5e-1"'),
        ("float-literal-dot", "float literal 0.5 (a '.')", None, 'type="float" source="0.5"'),
        ("float-literal-leading-dot", "float literal .5", None, 'type="float" source=".5"'),
        ("float-literal-negative", "float literal -1", None, 'type="float" source="-1"'),
        ("float-literal-plus", "float literal +2", None, 'type="float" source="+2"'),
        ("float-literal-space", "float literal ' 2'", None, 'type="float" source=" 2"'),
        ("float-literal-trailing-text", "float literal 1x", None, 'type="float" source="1x"'),
        ("float-literal-word", "float source x1 (no such attribute)", None, 'type="float" source="x1"'),
        ("float-literal-inf", "float literal inf", None, 'type="float" source="inf"'),
        ("float-literal-overflow", "float literal 1e40", None, 'type="float" source="1e40"'),
        ("float-literal-underflow", "float literal 1e-40", None, 'type="float" source="1e-40"'),
        ("unknown-name", "source names no attribute of the layer", None, 'type="float" source="alpha"')):
    kwargs = {}
    if n:
        kwargs["n"] = n
    if a:
        kwargs["a"] = a
    probe(f"scalar.{pid}", "scalar", rule, binding(**kwargs))

# --- shape lookups
for rank, shape, fmt in ((4, [1, 3, 8, 6], "BFYX"), (3, [3, 8, 6], "FYX"), (2, [1, 8], "BF")):
    for letter in "BFYX":
        probe(f"lookup.rank{rank}.{letter}", "lookup", f"I.{letter} on a rank-{rank} input",
              binding(fin=fmt, fout=fmt, n=f'type="int" port-index="0" source="I.{letter}"',
                      g="X,Y,F" if rank > 2 else "F", l="1,1,1" if rank > 2 else "1"),
              inputs=[[shape, "f16", None]])
probe("lookup.rank2-batch3", "lookup", "I.Y on a 2-D input [3, 8] (a batch the plugin splits)",
      binding(fin="BF", fout="BF", n='type="int" port-index="0" source="I.Y"', g="F", l="1"),
      inputs=[[[3, 8], "f16", None]])
for pid, src, rule in (("output", "O.X", "O.X reads the output"), ("lowercase-i", "i.X", "i.X (lower-case i)"),
                       ("other-prefix", "Q.X", "Q.X (any prefix but I)"), ("lowercase-letter", "I.x", "I.x")):
    probe(f"lookup.{pid}", "lookup", f"{rule}, on a layer whose output differs from its input",
          binding("ReduceProd", n=f'type="int" port-index="0" source="{src}"'), **REDUCE)
probe("lookup.input-on-reduce", "lookup", "I.X on the same layer (the input's X)",
      binding("ReduceProd", n='type="int" port-index="0" source="I.X"'), **REDUCE)
probe("lookup.bad-letter", "lookup", "I.Z", binding(n='type="int" port-index="0" source="I.Z"'))
probe("lookup.two-letters", "lookup", "I.XX", binding(n='type="int" port-index="0" source="I.XX"'))
probe("lookup.no-port-index", "lookup", "I.X without port-index", binding(n='type="int" source="I.X"'))
probe("lookup.port-out-of-range", "lookup", "I.X with port-index 1 on a one-input layer",
      binding(n='type="int" port-index="1" source="I.X"'))
probe("lookup.type-float", "lookup", "I.X bound as type=\"float\"", binding(n='type="float" port-index="0" source="I.X"'))

# --- scalars from layer attributes
probe("attr.float-as-float", "attr", "a float attribute (Elu alpha 0.25) as float",
      binding("Elu", a='type="float" source="alpha"'), type="Elu", attrs={"alpha": "0.25"})
probe("attr.float-as-int", "attr", "a float attribute (Elu alpha 2.75) as int",
      binding("Elu", n='type="int" source="alpha"'), type="Elu", attrs={"alpha": "2.75"})
probe("attr.int-as-float", "attr", "an int attribute (Softmax axis 3) as float",
      binding("Softmax", a='type="float" source="axis"'), type="Softmax", attrs={"axis": "3"})
probe("attr.clamp-min", "attr", "Clamp min as float", binding("Clamp", a='type="float" source="min"'), **CLAMP)
probe("attr.bool-as-int", "attr", "a bool attribute (CumSum exclusive) as int",
      binding("CumSum", n='type="int" source="exclusive"'), **CUMSUM)
probe("attr.port-index-on-single-value", "attr", "port-index on an attribute that is not a list (Elu alpha)",
      binding("Elu", a='type="float" port-index="0" source="alpha"'), **ELU)
for port, rule in ((0, "element 0"), (1, "element 1"), (2, "element 2 (out of range)")):
    probe(f"attr.list-element-{port}", "attr", f"a list attribute (Pooling kernel 2,3) with port-index {port}: {rule}",
          binding("Pooling", n=f'type="int" port-index="{port}" source="kernel"'), **MAXPOOL)
probe("attr.list-without-port-index", "attr", "a list attribute (Pooling kernel 2,3) without port-index",
      binding("Pooling", n='type="int" source="kernel"'), **MAXPOOL)

# --- <Where>
for pid, rule, expect in (
        ("numeric-equal", '0.5', "alpha 0.5"), ("numeric-equal-digits", '0.500000', "alpha 0.5"),
        ("greater", '&gt;0.4', ""), ("less", '&lt;0.4', ""), ("greater-equal", '&gt;=0.5', ""),
        ("not-equal", '!=0.5', ""), ("numeric-prefix", '0.5x', ""), ("not-a-number", 'abc', ""),
        ("operator-not-a-number", '&gt;abc', ""), ("equals-sign", '=0.5', ""), ("double-equals", '==0.5', ""),
        ("leading-space", ' 0.5', ""), ("operator-space", '&gt;= 0.5', "")):
    probe(f"where.{pid}", "where", f"<Where alpha=\"{rule}\"> on Elu alpha=0.5",
          binding("Elu", where=f'<Where alpha="{rule}"/>'), **ELU)
probe("where.missing-key", "where", "<Where beta=\"1\"> on a layer without beta", binding("Elu", where='<Where beta="1"/>'), **ELU)
probe("where.key-case", "where", "<Where ALPHA=\"0.5\"> (keys are case-sensitive)", binding("Elu", where='<Where ALPHA="0.5"/>'), **ELU)
probe("where.two-keys-one-missing", "where", "<Where alpha=\"0.5\" beta=\"1\">",
      binding("Elu", where='<Where alpha="0.5" beta="1"/>'), **ELU)
probe("where.int-attribute-holds", "where", "<Where axis=\"1\"> on Softmax axis=1", binding("Softmax", where='<Where axis="1"/>'), **SOFTMAX)
probe("where.int-attribute-fails", "where", "<Where axis=\"2\"> on Softmax axis=1", binding("Softmax", where='<Where axis="2"/>'), **SOFTMAX)
probe("where.string-case", "where", "<Where rounding_type=\"FLOOR\"> on floor", binding("Pooling", where='<Where rounding_type="FLOOR"/>'), **MAXPOOL)
probe("where.string-other", "where", "<Where rounding_type=\"ceil\"> on floor", binding("Pooling", where='<Where rounding_type="ceil"/>'), **MAXPOOL)
probe("where.list-value", "where", "<Where kernel=\"2,3\"> on kernel 2,3", binding("Pooling", where='<Where kernel="2,3"/>'), **MAXPOOL)
probe("where.list-first-element", "where", "<Where kernel=\"2\"> on kernel 2,3", binding("Pooling", where='<Where kernel="2"/>'), **MAXPOOL)
probe("where.list-comparison", "where", "<Where kernel=\"&gt;1\"> on kernel 2,3", binding("Pooling", where='<Where kernel="&gt;1"/>'), **MAXPOOL)
probe("where.dropped-attribute", "where", "<Where auto_pad=\"explicit\">: the legacy Pooling layer drops auto_pad=explicit",
      binding("Pooling", where='<Where auto_pad="explicit"/>'), **MAXPOOL)
probe("where.added-attribute", "where", "<Where pool-method=\"max\">: an attribute the legacy Pooling layer adds",
      binding("Pooling", where='<Where pool-method="max"/>'), **MAXPOOL)
for value, rule in (("false", "false"), ("false", "False"), ("false", "0"), ("false", "true"), ("1", "true"), ("1", "1")):
    probe(f"where.bool-{value}-rule-{rule}", "where", f"<Where exclusive=\"{rule}\"> on CumSum exclusive=\"{value}\" in the IR",
          binding("CumSum", where=f'<Where exclusive="{rule}"/>'), **dict(CUMSUM, attrs={"exclusive": value, "reverse": "false"}))

# --- WorkSizes
for pid, rule, g, l in (
        ("two-dims", "two dimensions", "X,Y", "1,1"), ("one-dim", "one dimension", "X", "1"),
        ("four-dims", "four dimensions", "X,Y,F,B", "1,1,1,1"), ("five-dims", "five dimensions", "X,Y,F,B,2", "1,1,1,1,1"),
        ("local-fewer-dims", "local has fewer dimensions than global", "X,Y,F", "1,1"),
        ("local-more-dims-ones", "local has more dimensions than global (extra 1s)", "X,Y", "1,1,1"),
        ("local-more-dims", "local has more dimensions than global", "X,Y", "2,4,5"),
        ("local-zero", "a local size of 0", "X,Y,F", "0,1,1"),
        ("global-below-local", "global 6 below local 12: no group", "X,Y,F", "X*2,1,1"),
        ("global-zero", "a global size of 0", "X-X,Y,F", "1,1,1"),
        ("global-negative", "a negative global size", "0-X,Y,F", "1,1,1"),
        ("local-negative", "a negative local size", "X,Y,F", "0-1,1,1"),
        ("int-literal-above-int32", "an int literal above 2^31-1 (saturates: 2147483648/1073741824 is 1)",
         "2147483648/1073741824,Y,F", "1,1,1"),
        ("int-overflow", "int arithmetic overflows (wraps)", "X*536870912,Y,F", "1,1,1"),
        ("not-multiple", "global 6 not a multiple of local 4", "X,Y,F", "4,1,1"),
        ("multiple", "global a multiple of local", "X,Y,F", "2,1,1"),
        ("local-equals-global", "one group holding everything", "X,Y,F", "X,Y,F"),
        ("large-group", "a group of 1024 work items", "X*Y*F*1024", "1024"),
        ("lowercase-names", "x, y, f in lower case", "x,y,f", "1,1,1"),
        ("unknown-name", "a name that is no attribute of the layer", "X,Y,zork", "1,1,1")):
    probe(f"worksizes.{pid}", "worksizes", rule, binding(g=g, l=l))
probe("worksizes.dim-no-index", "worksizes", "dim=\"input\" without an index", binding(dim="input"))
probe("worksizes.dim-output", "worksizes", "dim=\"output,0\" (the output's X on a reducing layer)",
      binding("ReduceProd", dim="output,0"), **REDUCE)
probe("worksizes.dim-uppercase", "worksizes", "dim=\"INPUT,0\"", binding(dim="INPUT,0"))
probe("worksizes.dim-input-1", "worksizes", "dim=\"input,1\" on a one-input layer", binding(dim="input,1"))
probe("worksizes.numeric-attribute", "worksizes", "a numeric layer attribute (Softmax axis=2)",
      binding("Softmax", g="X*axis,Y,F"), type="Softmax", attrs={"axis": "2"})
probe("worksizes.float-attribute", "worksizes", "a float layer attribute (Elu alpha=0.5): X*alpha",
      binding("Elu", g="X*alpha,Y,F"), **ELU)
probe("worksizes.float-attribute-product", "worksizes", "Elu alpha=0.75: X*alpha*4",
      binding("Elu", g="X*alpha*4,Y,F"), type="Elu", attrs={"alpha": "0.75"})
probe("worksizes.clamp-attribute", "worksizes", "Clamp max=0.5: X*max*2", binding("Clamp", g="X*max*2,Y,F"), **CLAMP)
probe("worksizes.list-attribute", "worksizes", "a list attribute (Pooling kernel 2,3) as a name",
      binding("Pooling", g="X*kernel,Y,F"), **MAXPOOL)
probe("worksizes.bool-attribute", "worksizes", "a bool attribute (CumSum exclusive) as a name",
      binding("CumSum", g="X+exclusive,Y,F"), **CUMSUM)

# --- the size-expression language (global[0] of a Sinh layer 1x3x8x6: X=6, Y=8, F=3)
for pid, text in (
        ("int-division", "X/4"), ("int-remainder", "X%4"), ("float-product", "X*0.5"), ("float-division", "X/4.0"),
        ("float-truncation", "X*2.7"), ("floor", "floor(X/4.0)"), ("ceil", "ceil(X/4.0)"), ("round", "round(X/4.0)"),
        ("round-half", "round(2.5)"), ("round-negative-half", "round(0-2.5)+5"), ("abs", "abs(0-X)"),
        ("sqrt", "sqrt(X*X)"), ("sqrt-rounding", "sqrt(2)*sqrt(2)*X"), ("exponent-literal", "1.5e1"),
        ("exponent-integer-literal", "X*1e1"), ("parentheses", "X*(Y)"), ("left-associative", "Y-X-1"),
        ("precedence", "Y-X*2+F%2"), ("brackets-in-local", "X"),
        ("parse-unclosed", "(X"), ("parse-unopened", "X)"), ("parse-unclosed-function", "floor(X"),
        ("parse-character", "X$1"), ("parse-two-dots", "2..5*X"), ("parse-leading-dot", "X*.5"),
        ("parse-name", "Xa"), ("parse-name-underscore", "X_1"),
        ("unary-minus", "-X"), ("dangling-operator", "X+"), ("two-values", "X Y"), ("empty-parentheses", "()"),
        ("adjacent-groups", "(X)(Y)"), ("double-minus", "X--Y"), ("times-minus", "X*-1"),
        ("function-as-value", "X+floor"), ("function-without-argument", "floor()"),
        ("function-without-parentheses", "floor X"), ("function-without-parentheses-precedence", "ceil X/4.0"),
        ("trailing-parentheses", "X()"),
        ("division-by-zero", "X/0"), ("remainder-by-zero", "X%0"), ("division-by-zero-expression", "X/(2*0)"),
        ("float-remainder", "X*2.0%4"), ("sqrt-negative", "sqrt(0-X)"), ("float-overflow", "X*1e38*1e38")):
    l = "(0-1)*(0-1),1,1" if pid == "brackets-in-local" else "1,1,1"
    probe(f"expr.{pid}", "expr", f"global[0] = {text}" + (", local[0] = (0-1)*(0-1)" if pid == "brackets-in-local" else ""),
          binding(g=f"{text},Y,F", l=l))

# --- stages
probe("stages.two", "stages", "two stages linked by a scratch buffer", two_stages())
probe("stages.numbers-reversed", "stages", "stage=\"1\" on the writer, stage=\"0\" on the reader (document order writer first)",
      two_stages("1", "0"))
probe("stages.gap", "stages", "stages 0 and 2", two_stages("0", "2"))
probe("stages.no-zero", "stages", "stages 1 and 2", two_stages("1", "2"))
probe("stages.duplicate", "stages", "stages 0 and 0", two_stages("0", "0"))
probe("stages.missing-on-one", "stages", "the second kernel has no stage", two_stages("0", None))
probe("stages.missing-on-all", "stages", "no kernel has a stage", two_stages(None, None))
probe("stages.negative", "stages", "stages -1 and 0", two_stages("-1", "0"))
for pid, text in (("float-integral", "1.0"), ("float", "1.5"), ("trailing-text", "1x"), ("space", " 1"), ("word", "abc")):
    probe(f"stages.{pid}", "stages", f"stage=\"{text}\" on the second of two kernels", two_stages("0", text))
probe("stages.max-shaves-per-stage", "stages", "max-shaves 2 and 5 on two stages",
      two_stages(extra0=' max-shaves="2"', extra1=' max-shaves="5"'))
probe("stages.single-with-stage-1", "stages", "one kernel with stage=\"1\"", binding(kernel_attrs=' stage="1"'))
probe("stages.single-with-word", "stages", "one kernel with stage=\"abc\"", binding(kernel_attrs=' stage="abc"'))
probe("stages.three-in-order", "stages", "three stages (two writers, one reader), numbered in document order",
      three_stages(["sa", "sb", "s2"], {"sa": 0, "sb": 1, "s2": 2}))
probe("stages.three-writers-swapped", "stages", "three stages, the writers numbered 1 and 0 in document order",
      three_stages(["sa", "sb", "s2"], {"sa": 1, "sb": 0, "s2": 2}))
probe("stages.three-reader-first-in-file", "stages", "three stages, the reader first in the file (stage 2)",
      three_stages(["s2", "sa", "sb"], {"s2": 2, "sa": 0, "sb": 1}))
probe("stages.three-reader-numbered-0", "stages", "three stages, the reader numbered 0 and first in the file",
      three_stages(["s2", "sa", "sb"], {"s2": 0, "sa": 1, "sb": 2}))
probe("stages.output-written-twice", "stages", "two stages both write the output",
      layer_of(kernel("s1", 0, '<Tensor arg-name="buf" type="input" port-index="0" format="BFYX"/>', Y_OUT),
               kernel("s1", 1, '<Tensor arg-name="buf" type="input" port-index="0" format="BFYX"/>', Y_OUT)))

# --- scratch buffers and __local data (the blob's buffer dims, the -3 arguments)
for pid, rule, kwargs in (
        ("bytes", "size X*Y*F*4", {}), ("small", "size F*2", {"size0": "F*2"}), ("constant", "size 7", {"size0": "7"}),
        ("float", "size X*Y*F*2.5", {"size0": "X*Y*F*2.5"}),
        ("sizes-differ", "the reader declares size 8, the writer X*Y*F*4", {"size1": "8"}),
        ("reader-first-size", "the writer declares size 8, the reader X*Y*F*4", {"size0": "8", "size1": "X*Y*F*4"}),
        ("dim-output", "dim=\"output,0\"", {"dim": "output,0"}),
        ("unknown-name", "size X*zork", {"size0": "X*zork"}),
        ("ports-differ", "output_buffer 0, input_buffer 1", {"port1": "1"})):
    probe(f"buffer.{pid}", "buffer", rule, two_stages(**kwargs))
probe("buffer.never-read", "buffer", "an output_buffer no stage reads",
      layer_of(kernel("sa", 0, X_IN, buf("buf", "output_buffer", 0)),
               kernel("s1", 1, '<Tensor arg-name="buf" type="input" port-index="0" format="BFYX"/>', Y_OUT)))
probe("buffer.never-written", "buffer", "an input_buffer no stage writes",
      layer_of(kernel("s1", None, buf("buf", "input_buffer", 0), Y_OUT)))
probe("buffer.single-stage-output-buffer", "buffer", "one stage writing only an output_buffer (no output)",
      layer_of(kernel("sa", None, X_IN, buf("buf", "output_buffer", 0))))
probe("buffer.rank3", "buffer", "two stages on a 3-D input (FYX)", two_stages().replace('format="BFYX"', 'format="FYX"'),
      inputs=[[[3, 8, 6], "f16", None]])
for pid, size in (("attribute-size", "X*2"), ("constant", "100"), ("zero", "0"), ("float", "3.5*X")):
    probe(f"local.{pid}", "local", f"local_data size {size}", two_stages(local=size))

# --- <Data type="data">: a blob of the legacy layer
PRELU = dict(type="PRelu", inputs=[S4, [[3], "f16", [0.1, 0.2, 0.3]]])
probe("data.weights", "data", "<Data type=\"data\" source=\"weights\"> on PRelu (its slope)",
      binding("PRelu", source="weighted.bin", n="", a="", extra='<Data arg-name="w" type="data" source="weights"/>'), **PRELU)
probe("data.missing-blob", "data", "<Data source=\"biases\"> on PRelu (no such blob)",
      binding("PRelu", source="weighted.bin", n="", a="", extra='<Data arg-name="w" type="data" source="biases"/>'), **PRELU)
probe("data.no-blobs", "data", "<Data source=\"weights\"> on Sinh (no blobs)",
      binding(source="weighted.bin", n="", a="", extra='<Data arg-name="w" type="data" source="weights"/>'))
probe("data.absorbed-input-as-tensor", "data", "PRelu's slope bound as <Tensor type=\"input\" port-index=\"1\">",
      binding("PRelu", source="weighted.bin", n="", a="", extra='<Tensor arg-name="w" type="input" port-index="1" format="BF"/>'),
      **PRELU)

# --- formats on each rank, input and output
for rank, shape in ((2, [1, 8]), (3, [3, 8, 6]), (4, [1, 3, 8, 6])):
    for fmt in ("BFYX", "BYXF", "FYX", "YXF", "BF", "ANY"):
        for side in ("input", "output"):
            fin, fout = (fmt, "BF") if side == "input" else ("BF", fmt)
            probe(f"format.rank{rank}.{side}.{fmt}", "format", f"format {fmt} on a rank-{rank} {side}",
                  binding(fin=fin, fout=fout, g="X,Y,F"), inputs=[[shape, "f16", None]])
probe("format.lowercase", "format", "format=\"bfyx\"", binding(fin="bfyx", fout="bfyx"))
probe("format.bfxy", "format", "format=\"BFXY\" (the guide's typo)", binding(fin="BFXY"))
probe("format.default", "format", "no format attribute (BFYX)", CLEAN.replace(' format="BFYX"', ""))

# --- which layer type a binding must name: the legacy layer's
for pid, name, layer in (
        ("maxpool-as-maxpool", "MaxPool", MAXPOOL), ("maxpool-as-pooling", "Pooling", MAXPOOL),
        ("avgpool-as-pooling", "Pooling", dict(MAXPOOL, type="AvgPool", attrs=dict(POOL_ATTRS, exclude_pad="true"))),
        ("transpose-as-transpose", "Transpose", dict(type="Transpose", inputs=[S4, [[4], "i64", [0, 1, 2, 3]]])),
        ("transpose-as-permute", "Permute", dict(type="Transpose", inputs=[S4, [[4], "i64", [0, 1, 2, 3]]])),
        ("add-as-add", "Add", dict(type="Add", inputs=[S4, S4], attrs={"auto_broadcast": "numpy"})),
        ("add-as-eltwise", "Eltwise", dict(type="Add", inputs=[S4, S4], attrs={"auto_broadcast": "numpy"})),
        ("multiply-as-eltwise", "Eltwise", dict(type="Multiply", inputs=[S4, S4], attrs={"auto_broadcast": "numpy"})),
        ("softmax-as-softmax-caps", "SoftMax", SOFTMAX), ("elu-as-elu-caps", "ELU", ELU),
        ("relu-as-relu", "Relu", dict(type="Relu")), ("tanh-as-tanh", "Tanh", dict(type="Tanh"))):
    probe(f"legacy.{pid}", "legacy", f"a {layer['type']} layer bound by <CustomLayer name=\"{name}\">", binding(name), **layer)
probe("legacy.mvn-bool-digit", "legacy", "MVN-2's across_channels=false as a <Where> (the legacy layer says 0)",
      binding("MVN", where='<Where across_channels="0"/>'), type="MVN", version="opset2",
      attrs={"across_channels": "false", "normalize_variance": "true", "eps": "1e-9"})
probe("legacy.pool-method", "legacy", "Pooling's legacy attribute pool-method as a <Where>",
      binding("Pooling", where='<Where pool-method="avg"/>'), **dict(MAXPOOL, type="AvgPool"))


# Every data input of a stage must have the first input's batch N (a 3-D tensor has none, so N = 1): seen
# with OpenVINO's own CTCGreedyDecoder binding, whose [T, 1] sequence mask reads as N = T.
BATCH_W = '<Tensor arg-name="w" type="input" port-index="1" format="BF"/>'
probe("batch.second-input-other-n", "batch", "a 3-D first input beside a 2-D [3, 8] one (N 1 and 3)",
      binding("Eltwise", source="weighted.bin", n="", a="", fin="BF", fout="BF", extra=BATCH_W, g="X,F,1"),
      type="Add", inputs=[[[1, 3, 8], "f16", None], [[3, 8], "f16", None]], attrs={"auto_broadcast": "numpy"})
probe("batch.second-input-other-n-any", "batch", "the same [3, 8] second input bound with format ANY",
      binding("Eltwise", source="weighted.bin", n="", a="", fin="BF", fout="BF", g="X,F,1",
              extra='<Tensor arg-name="w" type="input" port-index="1" format="ANY"/>'),
      type="Add", inputs=[[[1, 3, 8], "f16", None], [[3, 8], "f16", None]], attrs={"auto_broadcast": "numpy"})
probe("batch.second-input-same-n", "batch", "a 3-D first input beside a 2-D [1, 8] one (both N 1)",
      binding("Eltwise", source="weighted.bin", n="", a="", fin="BF", fout="BF", extra=BATCH_W, g="X,F,1"),
      type="Add", inputs=[[[1, 3, 8], "f16", None], [[1, 8], "f16", None]], attrs={"auto_broadcast": "numpy"})


# Extension layers (version="extension", docs/plugin-check.md): the shim's FrameworkNode keeps the layer's
# type and <data>, so a binding is reached for types no opset has and types the plugin decomposes.
probe("extension.no-opset-type", "extension", "a Hardmax extension layer (no opset has Hardmax)",
      binding("Hardmax"), type="Hardmax", version="extension")
probe("extension.opset-layer-of-no-opset-type", "extension", "a Hardmax layer of version opset1",
      binding("Hardmax"), type="Hardmax", version="opset1")
probe("extension.decomposed-type", "extension", "a DepthToSpace extension layer (the opset op is decomposed first)",
      binding("DepthToSpace"), type="DepthToSpace", version="extension",
      attrs={"block_size": "2", "mode": "blocks_first"})
probe("extension.unknown-type", "extension", "an extension layer of a type no OpenVINO release has",
      binding("KernelkitProbeOp"), type="KernelkitProbeOp", version="extension")
probe("extension.scalar-from-data", "extension", "a <Scalar source> reading an extension layer's <data> attribute",
      binding("Hardmax", a='type="float" source="gain"'), type="Hardmax", version="extension",
      attrs={"gain": "0.75"})
probe("extension.batch-network", "extension", "an extension layer in a 4-D network of batch 2 (compiled per sample: the node follows the batch)",
      binding("Hardmax"), type="Hardmax", version="extension", inputs=[[[2, 3, 8, 6], "f16", None]])
probe("extension.convert-attribute", "extension", "a Convert extension layer's own attribute read by a <Scalar>",
      binding("Convert", a='type="float" source="scale"'), type="Convert", version="extension",
      attrs={"destination_type": "f16", "scale": "0.5"})
probe("extension.convolution", "extension", "a Convolution extension layer (the plugin has its own conversion)",
      binding("Convolution"), type="Convolution", version="extension",
      attrs={"strides": "1,1", "dilations": "1,1", "pads_begin": "0,0", "pads_end": "0,0", "auto_pad": "explicit"})
probe("extension.rank1-input", "extension", "an extension layer with a rank-1 second input",
      binding("Hardmax"), type="Hardmax", version="extension",
      inputs=[S4, [[6], "f16", None]])


# --------------------------------------------------------------------------------------------- running
def _case(item: Probe):
    import numpy as np

    from kernelkit.doctor.plugin_check import check_model

    inputs = []
    for shape, etype, value in item.layer.inputs:
        inputs.append(check_model.TensorSpec(tuple(shape), etype, None if value is None else np.asarray(value)))
    outputs = [tuple(s) for s in item.layer.outputs] if item.layer.outputs else [tuple(item.layer.inputs[0][0])]
    return check_model.CheckCase(item.layer.type, inputs, outputs, dict(item.layer.attrs), item.layer.version, name=item.id)


def kernelkit_verdict(reading: str) -> str:
    """kernelkit's reading ('accepts' / 'skips: ...' / 'refuses: ...') as a plugin verdict."""
    if reading == "accepts" or reading.startswith("accepts"):
        return "accepted"
    if reading.startswith("skips") or reading.startswith("refuses: no binding alternative applies"):
        return "skipped"
    return "rejected"


def _plugin_record(verdict) -> dict:
    stages = []
    for s in verdict.stages:
        stages.append({
            "entry": s.entry, "groups": list(s.groups), "local": list(s.local), "max_shaves": s.max_shaves,
            "args": [{"name": a.name, "kind": a.kind, "value": a.value} for a in s.args],
            "inputs": [{"order": b.order, "dims": list(b.logical_shape())} for b in s.inputs],
            "outputs": [{"order": b.order, "dims": list(b.logical_shape())} for b in s.outputs]})
    return {"status": verdict.status, "message": verdict.message, "stages": stages}


def probe_from_row(row: dict) -> Probe:
    """The probe a recorded row of the data file describes."""
    return Probe(row["id"], row["group"], row["rule"], row["binding"], Layer(**row["layer"]))


def run_probe(item: Probe) -> dict:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.plugin_check import binding_file

    row = {"id": item.id, "group": item.group, "rule": item.rule, "binding": item.xml,
           "layer": {"type": item.layer.type, "version": item.layer.version, "inputs": item.layer.inputs,
                     "attrs": item.layer.attrs, "outputs": item.layer.outputs}}
    with tempfile.TemporaryDirectory(prefix="kernelkit-probe-binding-") as tmp:
        folder = Path(tmp)
        for name, text in SOURCES.items():
            (folder / name).write_text(text)
        xml = folder / "bindings.xml"
        xml.write_text(item.xml)
        try:
            verdict = binding_file.check(xml, [_case(item)], jobs=1)[0]
        except KernelkitError as exc:       # the check itself failed: recorded, never fatal
            row.update(plugin={"status": "error", "message": str(exc), "stages": []},
                       kernelkit={"verdict": "?", "reading": "", "findings": [], "differences": []}, agrees=False)
            return row
    row["plugin"] = _plugin_record(verdict)
    reading = {"verdict": kernelkit_verdict(verdict.kernelkit), "reading": verdict.kernelkit,
               "findings": list(verdict.findings), "differences": list(verdict.differences)}
    row["kernelkit"] = reading
    row["agrees"] = agrees(row["plugin"]["status"], reading)
    return row


def agrees(status: str, reading: dict) -> bool:
    return status == reading["verdict"] and not reading["differences"]


def run(probes: list[Probe], jobs: int) -> list[dict]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_probe, probes))


# ------------------------------------------------------------------------------------------- the outputs
def _plugin_version() -> str:
    try:
        from kernelkit.myriad import toolchain

        return f"MYRIAD plugin of OpenVINO {toolchain.OPENVINO_VERSION}"
    except Exception:                     # only a label
        return "MYRIAD plugin of OpenVINO 2021.4.2"


def _cell(text: str, limit: int = 150) -> str:
    text = " ".join(html.unescape(str(text)).split())
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return html.escape(text, quote=False).replace("|", "\\|")


def _blob_summary(plugin: dict) -> str:
    parts = []
    for s in plugin["stages"]:
        scalars = " ".join(f"{a['name']}={a['value']:g}" if a["kind"] == "float" else f"{a['name']}={a['value']}"
                           for a in s["args"] if a["kind"] in ("int", "float", "local"))
        parts.append(f"`{s['entry']}` groups {tuple(s['groups'])} local {tuple(s['local'])}"
                     + (f" max-shaves {s['max_shaves']}" if s["max_shaves"] else "") + (f" {scalars}" if scalars else ""))
    return "; ".join(parts)


def _kernelkit_cell(reading: dict | None) -> str:
    if not reading:
        return "not recorded"
    text = reading["verdict"]
    if reading["verdict"] != "accepted":
        why = reading["reading"].split(": ", 1)[-1]
        text += f": {why}"
    if reading.get("differences"):
        text += "; differs: " + "; ".join(reading["differences"])
    return _cell(text, 160)


def write_outputs(rows: list[dict], seconds: float) -> None:
    sys.path.insert(0, str(REPO))
    from kernelkit.core.fsutil import atomic_write

    payload = {
        "plugin": _plugin_version() + ", compiled offline (VPU_MYRIAD_2480) with metadata-only kernel ELFs",
        "generator": "toolchain/probe_bindings.py",
        "date": datetime.date.today().isoformat(),
        "kernelkit_before": f"kernelkit at commit {BASELINE}, before the fixes docs/bindings.md lists",
        "run_seconds": round(seconds),
        "sources": SOURCES,
        "probes": rows,
    }
    atomic_write(JSON_OUT, json.dumps(payload, indent=1) + "\n")
    atomic_write(MD_OUT, markdown(payload))


def markdown(payload: dict) -> str:
    """docs/binding-verdicts.md from the data file's contents."""
    rows, seconds = payload["probes"], payload.get("run_seconds", 0)
    agree = sum(r["agrees"] for r in rows)
    before = [r for r in rows if r.get("kernelkit_before")]
    agree_before = sum(r.get("agreed_before", False) for r in before)
    counts = {s: sum(r["plugin"]["status"] == s for r in rows) for s in ("accepted", "rejected", "skipped")}
    lines = [
        "# What the real MYRIAD 2021.4 plugin makes of custom-layer bindings",
        "",
        "Generated by `toolchain/probe_bindings.py` (do not edit by hand; rerun it). Each probe is one rule of the",
        "binding parser, validator, lint or emulator, put to the real MYRIAD plugin of OpenVINO 2021.4.2 with",
        "`kernelkit plugin-check` machinery: the binding wraps a one-layer IR, its kernels are metadata-only ELFs",
        "made from the OpenCL sources, the plugin compiles, and the blob's Custom stages are read back. Data:",
        "`kernelkit/facts/data/binding-verdicts-2021.4.json` (every binding, layer, verdict and blob reading).",
        "",
        f"{len(rows)} probes: {counts['accepted']} accepted, {counts['rejected']} rejected, {counts['skipped']} "
        f"skipped by the plugin. kernelkit agrees on {agree} of {len(rows)} now"
        + (f" ({agree_before} of {len(before)} before the fixes listed in docs/bindings.md)" if before else "")
        + f"; run took {seconds:.0f} s.",
        "",
        "- **plugin**: accepted (the blob holds a Custom stage for the layer; what it holds follows), rejected (the",
        "  plugin's message; \"crashed\" is the plugin itself failing on the binding), skipped (the plugin used no",
        "  binding: it compiled the layer natively, or refused the type).",
        "- **kernelkit**: the verdict kernelkit's parser, validator and emulator give the same binding and layer;",
        "  \"differs\" lists where the emulator's launch (groups, local sizes, scalars, buffers, orders) is not the",
        "  blob's. **agrees**: the same verdict and, when accepted, the same launch.",
        "",
    ]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    titles = {"control": "Control", "parser": "The file and its elements", "kernel": "Kernels and argument binding",
              "scalar": "Scalar literals", "lookup": "Shape lookups (I.X, O.X)", "attr": "Scalars from layer attributes",
              "where": "`<Where>`", "worksizes": "`<WorkSizes>`", "expr": "The size-expression language",
              "stages": "Stages", "buffer": "Scratch buffers", "local": "__local data (local_data)",
              "data": "`<Data type=\"data\">`", "format": "Formats", "legacy": "Which layer type a binding names"}
    for group, items in groups.items():
        lines += [f"## {titles.get(group, group)}", "",
                  "| probe | rule | plugin | blob | kernelkit before | kernelkit now | agrees |",
                  "|---|---|---|---|---|---|---|"]
        for r in items:
            plugin = r["plugin"]["status"] + (f": {r['plugin']['message']}" if r["plugin"]["message"] else "")
            lines.append(f"| `{r['id']}` | {_cell(r['rule'], 90)} | {_cell(plugin, 140)} | "
                         f"{_cell(_blob_summary(r['plugin']), 140)} | {_kernelkit_cell(r.get('kernelkit_before'))} | "
                         f"{_kernelkit_cell(r['kernelkit'])} | {'yes' if r['agrees'] else '**no**'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="probes in parallel (default 4)")
    parser.add_argument("--only", metavar="REGEX", help="run only probes whose id matches (prints, writes nothing)")
    parser.add_argument("--baseline", action="store_true", help="record kernelkit's reading as the 'before' column")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    ids = [p.id for p in PROBES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"duplicate probe ids: {', '.join(duplicates)}")
    if args.render_only:
        from kernelkit.core.fsutil import atomic_write

        atomic_write(MD_OUT, markdown(json.loads(JSON_OUT.read_text())))
        return 0
    probes = [p for p in PROBES if not args.only or re.search(args.only, p.id)]
    start = time.monotonic()
    rows = run(probes, args.jobs)
    seconds = time.monotonic() - start
    if args.only:
        for r in rows:
            print(f"{r['id']:44} plugin {r['plugin']['status']:9} kernelkit {r['kernelkit']['verdict']:9} "
                  f"{'agrees' if r['agrees'] else 'DIFFERS'}  {_cell(r['plugin']['message'], 100)}")
            for d in r["kernelkit"]["differences"]:
                print(f"{'':44} differs: {_cell(d, 140)}")
            if r["kernelkit"]["verdict"] != r["plugin"]["status"]:
                print(f"{'':44} kernelkit: {_cell(r['kernelkit']['reading'], 140)}")
        return 0
    previous = {}
    if JSON_OUT.is_file() and not args.baseline:
        previous = {r["id"]: r for r in json.loads(JSON_OUT.read_text()).get("probes", [])}
    for r in rows:
        if args.baseline:
            r["kernelkit_before"], r["agreed_before"] = r["kernelkit"], r["agrees"]
        elif r["id"] in previous and previous[r["id"]].get("kernelkit_before"):
            before = previous[r["id"]]
            r["kernelkit_before"], r["agreed_before"] = before["kernelkit_before"], before["agreed_before"]
    write_outputs(rows, seconds)
    agree = sum(r["agrees"] for r in rows)
    print(f"{len(rows)} probes in {seconds:.0f} s, {agree} agree -> {JSON_OUT.relative_to(REPO)}, "
          f"{MD_OUT.relative_to(REPO)}")
    for r in rows:
        if not r["agrees"]:
            print(f"  differs: {r['id']}: plugin {r['plugin']['status']}, kernelkit {_kernelkit_cell(r['kernelkit'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
