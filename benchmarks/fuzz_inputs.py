"""Hostile and broken input, measured: every reader of user files fuzzed, each case in an isolated worker.

    nice -n 10 .venv/bin/python benchmarks/fuzz_inputs.py [--cases 10000] [--readers ir-xml,onnx,...]
        [--workers 2] [--seed 0] [--work DIR] [--markdown] [--json OUT.json]

For each reader, cases are real files (the kernel library, examples/blocked_model, the onnx package's small
models, blobs compiled with `kernelkit compile` and `plugin-check`, check ELFs) mutated at random
(truncations, bit flips, interesting integers, splices, XML/TOML edits), and structured bad files whose plan
hypothesis draws (wrong offsets, huge declared shapes, negative sizes, duplicated names, graph cycles, DTDs
and entities, deep nesting, path traversal and links, FIFOs, decompression bombs).

Every case runs in a worker process (RLIMIT_AS 4 GiB, so an allocation sized by a declared shape fails
instead of swapping) with a per-case time limit; a worker that does not answer in time is killed and the case
counts as a hang. Per reader the counts are: cases, accepted, clear errors (KernelkitError, or CLI exit 2
with a message), tracebacks (any other exception, a CLI exit outside 0-3, or "Traceback" on stderr), hangs,
crashes (the worker died), outputs written despite an error (anything left in the output folder, staging
leftovers included), inputs modified (every input file hashed before and after; nothing may appear beside
them). Failures are saved with their files under WORK/failures/ for replay (`--replay DIR`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import platform
import random
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER_MEMORY = 4 << 30
RECYCLE_AFTER = 400            # cases per worker process, so leaks in OpenVINO/onnx stay bounded


# ------------------------------------------------------------------------------------------------ cases

@dataclass
class Case:
    reader: str
    index: int
    kind: str                                   # which generator made it
    files: dict[str, bytes] = field(default_factory=dict)     # relative to the case's in/ folder
    links: dict[str, str] = field(default_factory=dict)       # symlinks: path -> target (relative to in/ or absolute)
    fifos: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    sparse: dict[str, int] = field(default_factory=dict)      # files of this size holding no data (truncate)
    main: str = ""                              # the file the reader is given
    action: str = ""                            # which entry point of the reader
    params: dict = field(default_factory=dict)


@dataclass
class Result:
    status: str                                 # accepted | error | traceback | hang | crash
    signature: str = ""
    detail: str = ""
    partial: bool = False
    modified: bool = False
    names_file: bool = True                     # a clear error names the file it is about
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------ mutators

INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095, 4096,
               0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
HOSTILE_NUMBERS = ["0", "-1", "-2147483648", "2147483647", "2147483648", "4294967295", "4294967296",
                   "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                   "99999999999999999999999999", "1e309", "-1e309", "nan", "inf", "-0", "0x10", " 7", "1.5",
                   "1e-400", "\u0661\u0662", "\u00b2", "١", "3" * 400, "", "1,2", "-", "+", "1e", "007"]
HOSTILE_TEXT = ["", " ", "\t", "../../../../etc/passwd", "/etc/passwd", "/dev/zero", "con", "a" * 5000,
                "\u202e\u0000x", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"), "é" * 50,
                "%s%n%x", "${HOME}", "{{ 7*7 }}", "{% for x in range(10**9) %}{% endfor %}", "<", "&amp;", "'\"",
                "x,y,z", "input,0", "output,9999", "B*F*Y*X*1000000", "((((((((((1))))))))))", "1/0", "sqrt(0-1)",
                "I.X", "O.Y", "NaN", "true", "false", "0.0", "\\", "*/", "\n", "__kernel", "\u0130"]


def _int_bytes(rng: random.Random) -> bytes:
    value = rng.choice(INTERESTING) if rng.random() < 0.8 else rng.getrandbits(32)
    width = rng.choice((4, 4, 4, 8, 2, 1))
    value &= (1 << (8 * width)) - 1
    if rng.random() < 0.2:
        value = (-value) & ((1 << (8 * width)) - 1)
    return value.to_bytes(width, "little")


def mutate_bytes(rng: random.Random, data: bytes, others: list[bytes] = ()) -> bytes:
    """One to four random edits of a binary file."""
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        op = rng.randrange(9)
        n = len(data)
        if op == 0 and n:
            del data[rng.randrange(n + 1):]                                   # truncation
        elif op == 1 and n:
            for _ in range(rng.randrange(1, 9)):
                data[rng.randrange(n)] ^= 1 << rng.randrange(8)              # bit flips
        elif op == 2 and n:
            at = rng.randrange(n)
            chunk = _int_bytes(rng)
            if rng.random() < 0.7:
                at -= at % 4
            data[at:at + len(chunk)] = chunk                                  # interesting integers
        elif op == 3 and n:
            at = rng.randrange(n)
            data[at:at + rng.randrange(1, 17)] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 17)))
        elif op == 4:
            at = rng.randrange(n + 1)
            data[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        elif op == 5 and n:
            at = rng.randrange(n)
            del data[at:at + rng.randrange(1, max(2, n // 8))]
        elif op == 6 and n:
            at = rng.randrange(n)
            chunk = data[at:at + rng.randrange(1, 256)]
            to = rng.randrange(n + 1)
            data[to:to] = chunk * rng.randrange(1, 4)                         # duplicated run
        elif op == 7 and others:
            other = rng.choice(others)
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + other[rng.randrange(len(other) + 1):]         # splice
        elif op == 8:
            data.extend(b"\0" * rng.choice((1, 4, 16, 4096)))
    return bytes(data)


_NUMBER_TOKEN = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def mutate_text(rng: random.Random, data: bytes, others: list[bytes] = ()) -> bytes:
    """One to three edits that keep most of a text file readable: numbers, quoted values, lines."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.randrange(8)
        if op in (0, 1):
            found = list(_NUMBER_TOKEN.finditer(data))
            if found:
                m = rng.choice(found)
                data = data[:m.start()] + rng.choice(HOSTILE_NUMBERS).encode() + data[m.end():]
                continue
        if op == 2:
            found = list(re.finditer(rb'"([^"\n]*)"', data))
            if found:
                m = rng.choice(found)
                value = rng.choice(HOSTILE_TEXT + HOSTILE_NUMBERS).replace('"', "'").encode("utf-8", "replace")
                data = data[:m.start(1)] + value + data[m.end(1):]
                continue
        lines = data.split(b"\n")
        i = rng.randrange(len(lines))
        if op == 3:
            del lines[i]
        elif op == 4:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif op == 5:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 6:
            lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)]
        else:
            return mutate_bytes(rng, b"\n".join(lines), others)
        data = b"\n".join(lines)
    return data


# --- XML ---------------------------------------------------------------------------------------------------

XML_TRICKS = {
    "billion-laughs": b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;'
                      b'&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'
                      b'&lol2;&lol2;&lol2;">]>\n',
    "external-entity": b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
    "external-dtd": b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">\n',
    "parameter-entity": b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n',
    "lowercase-doctype": b'<?xml version="1.0"?>\n<!doctype x [<!entity a "b">]>\n',
    "utf16-decl": b'<?xml version="1.0" encoding="UTF-16"?>\n',
    "latin1-decl": b'<?xml version="1.0" encoding="ISO-8859-1"?>\n',
    "bogus-encoding": b'<?xml version="1.0" encoding="x-no-such-codec"?>\n',
    "xml11": b'<?xml version="1.1"?>\n',
    "pi": b'<?xml-stylesheet href="file:///etc/passwd"?>\n',
}


def _hostile_attr(rng: random.Random) -> str:
    return rng.choice(HOSTILE_NUMBERS + HOSTILE_TEXT)


def mutate_xml(rng: random.Random, data: bytes, others: list[bytes] = (), *, fragment: bool = False) -> bytes:
    """Tree edits (elements removed, duplicated, moved, renamed; attributes changed) or a document trick."""
    from lxml import etree

    op = rng.randrange(12)
    if op == 0:
        trick = rng.choice(list(XML_TRICKS.values()))
        body = re.sub(rb"^\s*<\?xml[^>]*\?>\s*", b"", data)
        if b"&lol3;" not in body and rng.random() < 0.5:
            body = body.replace(b'"', b'"&lol3;', 1) if b"lol" in trick else body.replace(b'"', b'"&xxe;', 1)
        return trick + body
    if op == 1:                                    # deep nesting somewhere in the file
        depth = rng.choice((300, 3000, 100_000, 400_000))
        at = data.rfind(b"</")
        at = at if at > 0 else len(data)
        return data[:at] + b"<a>" * depth + b"</a>" * depth * rng.randrange(2) + data[at:]
    if op == 2:
        at = rng.randrange(len(data) + 1)
        junk = rng.choice([b"\0", b"\xff\xfe", b"\xef\xbb\xbf", b"<![CDATA[", b"]]>", b"<!--", b"-->", b"&#0;",
                           b"&#x110000;", b"&unknown;", b"<x xmlns:xi='http://www.w3.org/2001/XInclude'>"
                           b"<xi:include href='/etc/passwd' parse='text'/></x>", b"\x80\x81", b"\r", b"<", b">"])
        return data[:at] + junk + data[at:]
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, recover=False)
        text = data
        if fragment:
            text = b"<kk-root>" + re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data) + b"</kk-root>"
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError:
        return mutate_text(rng, data, others)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    for _ in range(rng.choice((1, 1, 2, 3))):
        el = rng.choice(elements)
        op = rng.randrange(9)
        if op == 0 and el is not root and el.getparent() is not None:
            el.getparent().remove(el)
            elements = [e for e in root.iter() if isinstance(e.tag, str)]
        elif op == 1 and el is not root and el.getparent() is not None:
            copy = etree.fromstring(etree.tostring(el))
            for _ in range(rng.choice((1, 1, 2, 50, 2000))):
                el.addnext(etree.fromstring(etree.tostring(copy)))
            elements = [e for e in root.iter() if isinstance(e.tag, str)]
        elif op in (2, 3, 4) and el.attrib:
            key = rng.choice(list(el.attrib))
            el.set(key, _hostile_attr(rng).replace("\0", ""))
        elif op == 5 and el.attrib:
            del el.attrib[rng.choice(list(el.attrib))]
        elif op == 6:
            other = rng.choice(elements)
            if other is not el and el not in list(other.iterancestors()) and el is not root:
                target = rng.choice(elements)
                if target is not el and el not in list(target.iterancestors()):
                    target.append(el)
        elif op == 7 and el is not root:
            el.tag = rng.choice(["layer", "port", "dim", "data", "edge", "Kernel", "Tensor", "Source", "Where",
                                 "WorkSizes", "Parameters", "CustomLayer", "body", "net", "x-unknown"])
        elif op == 8:
            el.text = _hostile_attr(rng).replace("\0", "")
    out = etree.tostring(root)
    if fragment:
        out = out.removeprefix(b"<kk-root>").removesuffix(b"</kk-root>")
        if out == b"<kk-root/>":
            out = b""
    return out


# ------------------------------------------------------------------------------------------------ hypothesis

def draw_examples(strategy, n: int, seed: int) -> list:
    """n examples of a hypothesis strategy (deterministic for a seed), to build structured cases from."""
    import warnings

    import hypothesis
    from hypothesis import HealthCheck, Phase, settings

    found: list = []

    @hypothesis.seed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @hypothesis.given(strategy)
    def collect(example):
        found.append(example)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect()
    return found


# ------------------------------------------------------------------------------------------------ seeds

def _onnx_data() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


TINY_IR_V10 = """<?xml version="1.0"?>
<net name="tiny" version="10">
	<layers>
		<layer id="0" name="x" type="Parameter" version="opset1">
			<data shape="1,3,4,4" element_type="f32"/>
			<output><port id="0" precision="FP32"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port></output>
		</layer>
		<layer id="1" name="bias" type="Const" version="opset1">
			<data element_type="f32" shape="1,3,1,1" offset="0" size="12"/>
			<output><port id="0" precision="FP32"><dim>1</dim><dim>3</dim><dim>1</dim><dim>1</dim></port></output>
		</layer>
		<layer id="2" name="add" type="Add" version="opset1">
			<input><port id="0"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port>
			<port id="1"><dim>1</dim><dim>3</dim><dim>1</dim><dim>1</dim></port></input>
			<output><port id="2" precision="FP32"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port></output>
		</layer>
		<layer id="3" name="relu" type="ReLU" version="opset1">
			<input><port id="0"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port></input>
			<output><port id="1" precision="FP32"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port></output>
		</layer>
		<layer id="4" name="out" type="Result" version="opset1">
			<input><port id="0"><dim>1</dim><dim>3</dim><dim>4</dim><dim>4</dim></port></input>
		</layer>
	</layers>
	<edges>
		<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
		<edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
		<edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
		<edge from-layer="3" from-port="1" to-layer="4" to-port="0"/>
	</edges>
</net>
"""
TINY_BIN = struct.pack("<3f", 0.5, -1.0, 2.0)

ROWS_CL = """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void scale_rows(__global const half* restrict src, __global half* restrict dst, int W, float alpha)
{
    const int y = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    const int base = ((n * get_global_size(1) + c) * get_global_size(0) + y) * W;
    for (int x = 0; x < W; ++x)
        dst[base + x] = src[base + x] * (half)alpha;
}
"""
ROWS_XML = """<CustomLayer name="Elu" type="MVCL" version="1">
    <Kernel entry="scale_rows">
        <Source filename="scale_rows.bin"/>
        <Parameters>
            <Tensor arg-name="src" type="input" port-index="0" format="BFYX"/>
            <Tensor arg-name="dst" type="output" port-index="0" format="BFYX"/>
            <Scalar arg-name="W" type="int" port-index="0" source="I.X"/>
            <Scalar arg-name="alpha" type="float" source="alpha"/>
        </Parameters>
        <WorkSizes dim="input,0" global="Y,F,B" local="1,1,1"/>
    </Kernel>
</CustomLayer>
"""


def _bundle(folder: Path, main: str) -> dict:
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return {"files": files, "main": main}


def build_seeds(work: Path, *, full: bool = True, log=print) -> dict[str, list[dict]]:
    """Real files for every reader: {reader group: [{"files": {name: bytes}, "main": name}]}. Cached in
    work/seeds.pickle (delete it to rebuild)."""
    cache = work / ("seeds.pickle" if full else "seeds-quick.pickle")
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.kernel.spec import load_spec

    scratch = Path(tempfile.mkdtemp(prefix="fuzz-seeds-", dir=work))
    seeds: dict[str, list[dict]] = {k: [] for k in ("ir", "onnx", "myriad", "gpu", "spec", "expr", "npz",
                                                      "blob", "elf")}
    t0 = time.time()

    # IR models: hand-written v10, the demo model converted (v11) and patched (v10), a synthetic chain
    tiny = scratch / "ir-tiny"
    tiny.mkdir()
    (tiny / "model.xml").write_text(TINY_IR_V10)
    (tiny / "model.bin").write_bytes(TINY_BIN)
    seeds["ir"].append(_bundle(tiny, "model.xml"))
    from kernelkit.ir.load import load_model

    demo_onnx = ROOT / "examples" / "blocked_model" / "model.onnx"
    if full:
        converted = scratch / "ir-demo"
        load_model(demo_onnx).save(converted / "model.xml")
        seeds["ir"].append(_bundle(converted, "model.xml"))
        from bench_ir import synthetic_ir

        chain = scratch / "ir-chain"
        chain.mkdir()
        xml = synthetic_ir(120, chain)
        seeds["ir"].append(_bundle(chain, xml.name))
        from kernelkit.model.patcher import patch_model

        patch_model(demo_onnx, scratch / "ir-patched", "2021.4")
        seeds["ir"].append({**_bundle(scratch / "ir-patched", "model.xml")})
        for name in ("test_operator_maxpool", "test_operator_lstm", "test_operator_pad", "test_operator_concat2"):
            source = _onnx_data() / "pytorch-operator" / name / "model.onnx"
            if source.is_file():
                with contextlib.suppress(Exception):
                    load_model(source).save(scratch / f"ir-{name}" / "model.xml")
                    seeds["ir"].append(_bundle(scratch / f"ir-{name}", "model.xml"))
    log(f"  IR seeds: {len(seeds['ir'])} ({time.time() - t0:.0f} s)")

    # ONNX: the demo model and the onnx package's small models (light_* ones are rare: slow to convert)
    seeds["onnx"].append({"files": {"model.onnx": demo_onnx.read_bytes()}, "main": "model.onnx", "weight": 8})
    if full:
        data = _onnx_data()
        for group in ("simple", "pytorch-operator", "pytorch-converted"):
            for model in sorted((data / group).glob("*/model.onnx")):
                if model.stat().st_size < 200_000:
                    seeds["onnx"].append({"files": {"model.onnx": model.read_bytes()}, "main": "model.onnx",
                                          "weight": 1})
        for model in ("light_zfnet512", "light_bvlc_alexnet"):
            path = data / "light" / f"{model}.onnx"
            if path.is_file():
                seeds["onnx"].append({"files": {"model.onnx": path.read_bytes()}, "main": "model.onnx",
                                      "weight": 0.3})
    log(f"  ONNX seeds: {len(seeds['onnx'])}")

    # kernel specs and the bindings rendered from them (MYRIAD and GPU) with their .cl
    from kernelkit.kernel import render

    kernel_dirs = sorted(p.parent for p in KERNELS_DIR.glob("*/kernel.toml"))
    kernel_dirs += sorted(p.parent for p in (ROOT / "tests" / "data" / "harness").glob("*/kernel.toml"))
    if not full:
        kernel_dirs = kernel_dirs[:3] + [d for d in kernel_dirs if d.name == "cumsum"]
    for kdir in kernel_dirs:
        files = {p.name: p.read_bytes() for p in sorted(kdir.iterdir()) if p.is_file() and p.suffix != ".pyc"}
        seeds["spec"].append({"files": files, "main": "kernel.toml"})
        try:
            spec = load_spec(kdir)
            sources = {n: r.text.encode() for n, r in render.render_sources(spec).items()}
            myriad_xml = render.render_myriad_xml(spec).encode()
            seeds["myriad"].append({"files": {f"{spec.name}.xml": myriad_xml, **sources},
                                    "main": f"{spec.name}.xml"})
            if len(spec.stages) == 1:
                seeds["gpu"].append({"files": {f"{spec.name}.gpu.xml": render.render_gpu_xml(spec).encode(),
                                               **sources}, "main": f"{spec.name}.gpu.xml"})
        except Exception as exc:  # noqa: BLE001 - a kernel that does not render is no seed
            log(f"  (no bindings from {kdir.name}: {exc})")
    for folder in (ROOT / "tests" / "data" / "shave", ROOT / "tests" / "data" / "bindings"):
        cls = {p.name: p.read_bytes() for p in folder.glob("*.cl")}
        for xml in sorted(folder.glob("*.xml")):
            group = "gpu" if xml.name.endswith(".gpu.xml") else "myriad"
            seeds[group].append({"files": {xml.name: xml.read_bytes(), **cls}, "main": xml.name})
    for group in ("myriad", "gpu"):
        for seed in seeds[group]:
            for expr_text in re.findall(rb'(?:global|local|size)="([^"]*)"', seed["files"][seed["main"]]):
                for part in expr_text.decode().split(","):
                    if part.strip():
                        seeds["expr"].append({"text": part.strip()})
    log(f"  specs {len(seeds['spec'])}, MYRIAD bindings {len(seeds['myriad'])}, GPU {len(seeds['gpu'])}, "
        f"expressions {len(seeds['expr'])}")

    # npz inputs as kernelkit emulate / verify read them
    import numpy as np

    rng = np.random.default_rng(0)
    for arrays in ({"in0": rng.standard_normal((1, 3, 4, 4)).astype(np.float16)},
                   {"in0": rng.standard_normal((2, 5)).astype(np.float32), "in1": np.arange(4, dtype=np.int32)},
                   {"in0": np.zeros((1, 1, 1, 8), np.float16), "in1": np.array(3, np.int64),
                    "in2": np.ones((3,), np.uint8)},
                   {"out0": rng.standard_normal((1, 10)).astype(np.float32)}):
        for compressed in (False, True):
            buffer = io.BytesIO()
            (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
            seeds["npz"].append({"files": {"inputs.npz": buffer.getvalue()}, "main": "inputs.npz",
                                 "prefix": "out" if "out0" in arrays else "in"})

    # blobs: kernelkit compile of the IRs above; check blobs with Custom stages from plugin-check
    from kernelkit.core.errors import KernelkitError

    try:
        from kernelkit.myriad import toolchain

        toolchain.require()
        have_toolchain = True
    except KernelkitError as exc:
        log(f"  no MYRIAD toolchain ({exc.message}): no blob seeds, so no blob and nn-archive cases")
        have_toolchain = False
    if have_toolchain:
        from kernelkit.doctor.plugin_check.binding_file import check
        from kernelkit.doctor.plugin_check.check_model import CheckCase, TensorSpec
        from kernelkit.doctor.plugin_check.kernel_folder import check_kernel_dir
        from kernelkit.myriad.compile import compile_model

        for number, bundle in enumerate(seeds["ir"]):
            folder = scratch / f"compile-{number}"
            folder.mkdir()
            for name, data in bundle["files"].items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
            with contextlib.suppress(KernelkitError):
                compile_model(folder / bundle["main"], folder / "model.blob")
                seeds["blob"].append({"files": {"model.blob": (folder / "model.blob").read_bytes()},
                                      "main": "model.blob"})
        # stage kinds the IRs above lack: HW ops with an injected stage, CONV_POOL, eltwise, rank-6, TopK
        sys.path.insert(0, str(ROOT / "tests"))
        from myriad_models import reader_models

        builders = reader_models()
        for name in ("depthwise_conv", "conv_pool", "eltwise", "permute6", "topk")[:5 if full else 1]:
            with contextlib.suppress(KernelkitError):
                xml = builders[name](scratch)
                compile_model(xml, scratch / f"{name}.blob")
                seeds["blob"].append({"files": {"model.blob": (scratch / f"{name}.blob").read_bytes()},
                                      "main": "model.blob"})
        rows = scratch / "rows"
        rows.mkdir()
        (rows / "scale_rows.cl").write_text(ROWS_CL)
        (rows / "rows.xml").write_text(ROWS_XML)
        kept = []
        if full:
            cases = [CheckCase("Elu", [TensorSpec(shape)], [shape], {"alpha": "0.5"},
                                            "opset1") for shape in ((1, 3, 5, 7), (2, 4, 3, 2))]
            check(rows / "rows.xml", cases, jobs=1, keep=scratch / "kept-rows")
            kept.append(scratch / "kept-rows")
            check_kernel_dir(KERNELS_DIR / "cumsum", jobs=1, keep=scratch / "kept-cumsum")
            kept.append(scratch / "kept-cumsum")
        for folder in kept:
            for blob in sorted(folder.rglob("*.check.blob")):
                seeds["blob"].append({"files": {"model.blob": blob.read_bytes()}, "main": "model.blob"})
            for elf in sorted(folder.rglob("*.check.elf"))[:12]:
                seeds["elf"].append({"files": {"kernel.elf": elf.read_bytes()}, "main": "kernel.elf"})
    from kernelkit.myriad import check_elf

    for number, bundle in enumerate(seeds["myriad"][:(31 if full else 2)]):     # check ELFs need no toolchain
        cls = [n for n in bundle["files"] if n.endswith(".cl")]
        if not cls:
            continue
        folder = scratch / f"elf-{number}"
        folder.mkdir()
        for n in cls:
            (folder / n).write_bytes(bundle["files"][n])
        with contextlib.suppress(KernelkitError):
            check_elf.write_check_elf([folder / cls[0]], folder / "k.check.elf")
            seeds["elf"].append({"files": {"kernel.elf": (folder / "k.check.elf").read_bytes()},
                                 "main": "kernel.elf"})
    log(f"  blobs {len(seeds['blob'])}, kernel ELFs {len(seeds['elf'])} ({time.time() - t0:.0f} s in all)")
    shutil.rmtree(scratch, ignore_errors=True)
    cache.write_bytes(pickle.dumps(seeds))
    return seeds


# ------------------------------------------------------------------------------------------------ generators

def _pick_seed(rng: random.Random, seeds: list[dict]) -> dict:
    weights = [s.get("weight", 1) for s in seeds]
    return rng.choices(seeds, weights)[0]


def _others(seeds: list[dict]) -> list[bytes]:
    """Other seeds' main files, for splices."""
    return [s["files"][s["main"]] for s in seeds[:20]]


def _file_trick(rng: random.Random, case: Case, name: str) -> str:
    """Replace the file `name` of a case by something that is not a regular file (or is absurdly large)."""
    case.files.pop(name, None)
    trick = rng.choice(("fifo", "dir", "dev-zero", "missing", "dangling", "loop", "sparse", "outside"))
    if trick == "fifo":
        case.fifos.append(name)
    elif trick == "dir":
        case.dirs.append(name)
    elif trick == "dev-zero":
        case.links[name] = "/dev/zero"
    elif trick == "dangling":
        case.links[name] = "no-such-file"
    elif trick == "loop":
        case.links[name] = name
    elif trick == "sparse":
        case.sparse[name] = rng.choice((200 << 20, 3 << 30, 1 << 40))    # under the 1 GiB limits, and far above
    elif trick == "outside":
        case.links[name] = "../secret/data"
    return trick


# --- IR xml --------------------------------------------------------------------------------------------------

IR_OPS = ("cycle", "self-loop", "dup-id", "dup-name", "dangling-edge", "bad-port", "two-edges", "dims", "rank",
          "precision", "net-version", "layer-type", "layer-version", "data-attr", "drop-edges", "drop-layer",
          "many-layers", "nested-body", "no-id", "dup-port", "xml-trick", "deep", "file-trick")
OP_TYPES = ("Add", "Convolution", "MatMul", "Reshape", "Gather", "Concat", "Interpolate", "TopK", "CumSum",
            "HardSigmoid", "Greater", "Convert", "Const", "Parameter", "Result", "Loop", "If", "TensorIterator",
            "Softmax", "MaxPool", "StridedSlice", "Transpose", "Broadcast", "Einsum", "NonMaxSuppression", "Mish",
            "ReduceProd", "Tile", "ScatterNDUpdate", "Squeeze", "Unsqueeze", "ShapeOf", "Split", "x-unknown")


def ir_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 1000), "op": st.sampled_from(IR_OPS), "a": st.integers(0, 10_000),
        "b": st.integers(0, 10_000), "value": st.one_of(st.sampled_from(HOSTILE_NUMBERS + HOSTILE_TEXT),
                                                         st.text(max_size=12), st.integers().map(str)),
        "count": st.sampled_from((1, 2, 7, 300, 5000)), "dims": st.lists(st.one_of(
            st.sampled_from((0, 1, -1, -7, 2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 63 - 1, 2 ** 64)).map(str),
            st.sampled_from(("?", "abc", "", "1.5", " 3 ", "1..10"))), max_size=9),
        "action": st.sampled_from(("load", "load", "load", "inspect", "patch", "save")),
    })


def _ir_tree(data: bytes):
    from lxml import etree

    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))


def apply_ir_plan(plan: dict, bundle: dict, case: Case) -> None:
    from lxml import etree

    main = bundle["main"]
    root = _ir_tree(bundle["files"][main])
    layers = root.find("layers")
    all_layers = list(layers.iterfind("layer"))
    edges = root.find("edges")
    edge_list = list(edges.iterfind("edge")) if edges is not None else []
    a, b, op, value = plan["a"], plan["b"], plan["op"], plan["value"]
    la, lb = all_layers[a % len(all_layers)], all_layers[b % len(all_layers)]
    ports = [p for p in root.iter("port")]
    if op == "cycle" and edge_list:
        last, first = edge_list[-1 - a % len(edge_list)], edge_list[b % len(edge_list)]
        e = etree.SubElement(edges, "edge")
        e.attrib.update({"from-layer": last.get("to-layer"), "from-port": "99", "to-layer": first.get("from-layer"),
                         "to-port": "0"})
        # and a well-formed cycle: the consumer's real output port back into the producer's input
        consumer = root.find(f".//layer[@id='{last.get('to-layer')}']")
        outs = consumer.findall("output/port") if consumer is not None else []
        if outs:
            first.set("from-layer", last.get("to-layer"))
            first.set("from-port", outs[0].get("id"))
    elif op == "self-loop" and edge_list:
        e = edge_list[a % len(edge_list)]
        e.set("from-layer", e.get("to-layer"))
    elif op == "dup-id":
        lb.set("id", la.get("id"))
    elif op == "dup-name":
        lb.set("name", la.get("name", "x"))
    elif op == "dangling-edge" and edge_list:
        edge_list[a % len(edge_list)].set(rng_key(a, ("from-layer", "to-layer")), value)
    elif op == "bad-port" and edge_list:
        edge_list[a % len(edge_list)].set(rng_key(a, ("from-port", "to-port")), value)
    elif op == "two-edges" and edge_list:
        e = edge_list[a % len(edge_list)]
        copy = etree.SubElement(edges, "edge", dict(e.attrib))
        copy.set("from-layer", edge_list[b % len(edge_list)].get("from-layer"))
    elif op == "dims" and ports:
        port = ports[a % len(ports)]
        for d in port.findall("dim"):
            port.remove(d)
        for text in plan["dims"]:
            etree.SubElement(port, "dim").text = text
    elif op == "rank" and ports:
        port = ports[a % len(ports)]
        for _ in range(plan["count"]):
            etree.SubElement(port, "dim").text = "1"
    elif op == "precision" and ports:
        ports[a % len(ports)].set("precision", value)
    elif op == "net-version":
        root.set("version", value)
    elif op == "layer-type":
        la.set("type", OP_TYPES[b % len(OP_TYPES)] if b % 3 else value)
    elif op == "layer-version":
        la.set("version", ("opset1", "opset8", "opset15", "opset9999", "opset0", "opsetX", value, "extension")[b % 8])
    elif op == "data-attr":
        data = la.find("data")
        if data is None:
            data = etree.SubElement(la, "data")
        keys = list(data.attrib) or ["axis"]
        data.set(keys[b % len(keys)] if b % 4 else ("axis", "shape", "element_type", "offset", "size", "auto_pad",
                                                      "destination_type", "special_zero")[b % 8], value)
    elif op == "drop-edges" and edges is not None:
        for e in edge_list[a % max(len(edge_list), 1)::1 + b % 3]:
            edges.remove(e)
    elif op == "drop-layer":
        layers.remove(la)
    elif op == "many-layers":
        template = all_layers[a % len(all_layers)]
        text = etree.tostring(template)
        for i in range(plan["count"] * 4):
            copy = etree.fromstring(text)
            copy.set("id", str(100_000 + i))
            copy.set("name", f"copy{i}")
            layers.append(copy)
    elif op == "nested-body":
        body = etree.SubElement(la, "body")
        inner = etree.SubElement(body, "layers")
        node = inner
        for _ in range(plan["count"] % 300):
            lay = etree.SubElement(node, "layer", {"id": "0", "name": "n", "type": "TensorIterator", "version": "opset1"})
            node = etree.SubElement(etree.SubElement(lay, "body"), "layers")
        etree.SubElement(node, "layer", {"id": "0", "name": "c", "type": "Const", "version": "opset1"}).append(
            etree.Element("data", {"element_type": "f32", "shape": "4", "offset": value, "size": "16"}))
    elif op == "no-id":
        del la.attrib["id"]
    elif op == "dup-port":
        group = la.find("output") if la.find("output") is not None else la.find("input")
        if group is not None and len(group):
            group.append(etree.fromstring(etree.tostring(group[0])))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if op == "xml-trick":
        xml = mutate_xml(random.Random(a * 7919 + b), xml)
    elif op == "deep":
        depth = (300, 5000, 100_000)[a % 3]
        xml = xml.replace(b"</layers>", b"<x>" * depth + b"</x>" * depth + b"</layers>", 1)
    case.files[main] = xml
    if op == "file-trick":
        _file_trick(random.Random(a), case, main if b % 2 else main.replace(".xml", ".bin"))


def rng_key(n: int, keys):
    return keys[n % len(keys)]


def gen_ir(rng: random.Random, seeds, plan, reader: str) -> Case:
    group = seeds["ir"]
    bundle = group[(plan or {}).get("seed", rng.randrange(len(group))) % len(group)]
    case = Case(reader, 0, "", dict(bundle["files"]), main=bundle["main"])
    if plan is not None:
        case.kind = f"hyp-{plan['op']}"
        case.action = plan["action"]
        apply_ir_plan(plan, bundle, case)
        return case
    case.action = rng.choice(("load", "load", "inspect", "patch"))
    main = bundle["main"]
    if rng.random() < 0.5:
        case.kind = "xml-edit"
        case.files[main] = mutate_xml(rng, case.files[main])
    elif rng.random() < 0.6:
        case.kind = "text-edit"
        case.files[main] = mutate_text(rng, case.files[main], _others(group))
    else:
        case.kind = "byte-edit"
        case.files[main] = mutate_bytes(rng, case.files[main], _others(group))
    return case


# --- IR .bin: Const offsets and sizes against the weights file ------------------------------------------

BIN_OPS = ("offset", "size", "shape", "element-type", "truncate-bin", "extend-bin", "no-bin", "bin-trick",
           "xml-trick", "offset+size", "two-consts-overlap", "shape-overflow", "port-dims")
ELEMENT_NAMES = ("f16", "f32", "f64", "bf16", "i4", "i8", "i16", "i32", "i64", "u1", "u2", "u3", "u4", "u6", "u8",
                 "u16", "u32", "u64", "boolean", "nf4", "f8e4m3", "string", "dynamic", "undefined", "FP16",
                 "x-bogus", "")
SHAPES = ("", "0", "1", "4", "-1", "?", "1,3", "2,2,2,2,2,2,2,2,2,2", "1000000,1000000", "4294967296,4294967296,16",
          "9223372036854775807", "3037000500,3037000500", "1,-5", "1..4", "[2,3]", "1, 3, 1, 1", "abc", "65536,65536,2")


def bin_strategy():
    from hypothesis import strategies as st

    big = st.sampled_from((0, 1, 3, 4, 11, 12, 13, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 2 ** 64, -1, -12))
    return st.fixed_dictionaries({
        "seed": st.integers(0, 1000), "op": st.sampled_from(BIN_OPS), "const": st.integers(0, 1000),
        "number": st.one_of(big, st.integers(-(2 ** 65), 2 ** 65)).map(str),
        "text": st.sampled_from(HOSTILE_NUMBERS), "shape": st.sampled_from(SHAPES),
        "etype": st.sampled_from(ELEMENT_NAMES), "cut": st.floats(0, 1), "extra": st.integers(0, 5000),
        "action": st.sampled_from(("load", "load", "load", "inspect", "patch")),
    })


def gen_bin(rng: random.Random, seeds, plan, reader: str) -> Case:
    if plan is None:                       # the same plans, drawn from python's random
        plan = {"seed": rng.randrange(1000), "op": rng.choice(BIN_OPS), "const": rng.randrange(1000),
                "number": str(rng.choice((rng.randrange(-100, 100000), rng.choice(INTERESTING)))),
                "text": rng.choice(HOSTILE_NUMBERS), "shape": rng.choice(SHAPES), "etype": rng.choice(ELEMENT_NAMES),
                "cut": rng.random(), "extra": rng.randrange(5000), "action": rng.choice(("load", "load", "inspect"))}
        kind = "rand-"
    else:
        kind = "hyp-"
    group = [s for s in seeds["ir"] if any(n.endswith(".bin") for n in s["files"])]
    bundle = group[plan["seed"] % len(group)]
    main = bundle["main"]
    bin_name = main[:-4] + ".bin"
    case = Case(reader, 0, kind + plan["op"], dict(bundle["files"]), main=main, action=plan["action"])
    root = _ir_tree(bundle["files"][main])
    consts = [d for d in root.iter("data") if d.getparent().get("type", "").lower() == "const"]
    op = plan["op"]
    if consts:
        data = consts[plan["const"] % len(consts)]
        if op == "offset":
            data.set("offset", plan["number"] if plan["const"] % 3 else plan["text"])
        elif op == "size":
            data.set("size", plan["number"] if plan["const"] % 3 else plan["text"])
        elif op == "offset+size":
            data.set("offset", str(len(bundle["files"][bin_name]) - plan["extra"] % 64))
            data.set("size", plan["number"])
        elif op == "shape":
            data.set("shape", plan["shape"])
        elif op == "shape-overflow":
            data.set("shape", rng_key(plan["extra"], ("4294967296,4294967296,16", "3037000500,3037000500",
                                                      "18446744073709551616", "2147483648,2147483648,2,2")))
        elif op == "element-type":
            data.set("element_type", plan["etype"])
        elif op == "two-consts-overlap" and len(consts) > 1:
            other = consts[(plan["const"] + 1) % len(consts)]
            data.set("offset", other.get("offset", "0"))
        elif op == "port-dims":
            port = data.getparent().find("output/port")
            if port is not None:
                for d in port.findall("dim"):
                    d.text = plan["number"]
    from lxml import etree

    case.files[main] = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    weights = bundle["files"][bin_name]
    if op == "truncate-bin":
        case.files[bin_name] = weights[:int(len(weights) * plan["cut"])]
    elif op == "extend-bin":
        case.files[bin_name] = weights + b"\xff" * plan["extra"]
    elif op == "no-bin":
        case.files.pop(bin_name)
    elif op == "bin-trick":
        case.kind += "-" + _file_trick(random.Random(plan["extra"]), case, bin_name)
    elif op == "xml-trick":
        case.kind += "-" + _file_trick(random.Random(plan["extra"]), case, main)
    return case


# --- ONNX -------------------------------------------------------------------------------------------------

ONNX_OPS = ("dims", "elem-type", "dup-output", "cycle", "drop-node", "dangling-input", "init-dims",
            "init-raw-trunc", "init-type", "external-data", "opset", "ir-version", "nested-if", "many-nodes",
            "attr", "op-type", "dup-input", "no-graph-output", "string-init", "file-trick", "huge-dims", "dim-param")
EXTERNAL_LOCATIONS = ("../secret/data", "/etc/hostname", "/dev/zero", "weights.bin", "sub/../../secret/data",
                      "link", "fifo", "missing.bin", "", ".", "weights.bin\0x", "C:\\x", "%2e%2e/secret/data")


def onnx_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 10_000), "op": st.sampled_from(ONNX_OPS), "a": st.integers(0, 10_000),
        "b": st.integers(0, 10_000), "dim": st.sampled_from((0, 1, -1, -3, 2 ** 31, 2 ** 40, 2 ** 62, 2 ** 63 - 1)),
        "etype": st.integers(-2, 30), "location": st.sampled_from(EXTERNAL_LOCATIONS),
        "length": st.sampled_from((0, 4, 1 << 20, 1 << 33, -1)), "offset": st.sampled_from((0, 3, 1 << 40, -5)),
        "count": st.sampled_from((2, 10, 120, 3000)), "text": st.sampled_from(HOSTILE_TEXT),
        "action": st.sampled_from(("load", "load", "load", "load", "inspect", "patch")),
    })


def apply_onnx_plan(plan: dict, model, case: Case) -> None:
    import onnx
    from onnx import TensorProto, helper

    g = model.graph
    a, b, op = plan["a"], plan["b"], plan["op"]
    values = list(g.input) + list(g.output) + list(g.value_info)
    nodes = list(g.node)
    if op in ("dims", "huge-dims", "dim-param") and values:
        v = values[a % len(values)]
        shape = v.type.tensor_type.shape
        if op == "huge-dims":
            for d in shape.dim:
                d.dim_value = plan["dim"] if plan["dim"] >= 0 else 0
        elif op == "dim-param" and len(shape.dim):
            shape.dim[b % len(shape.dim)].dim_param = plan["text"][:40] or "N"
        elif len(shape.dim):
            d = shape.dim[b % len(shape.dim)]
            d.dim_value = max(plan["dim"], -(2 ** 62))
        else:
            shape.dim.add().dim_value = plan["dim"]
    elif op == "elem-type" and values:
        values[a % len(values)].type.tensor_type.elem_type = plan["etype"] % 32
    elif op == "dup-output" and len(nodes) > 1:
        nodes[b % len(nodes)].output[0] = nodes[a % len(nodes)].output[0]
    elif op == "cycle" and len(nodes) > 1:
        first, last = nodes[min(a, b) % len(nodes)], nodes[-1]
        if first.input:
            first.input[0] = last.output[0]
    elif op == "drop-node" and nodes:
        g.node.remove(g.node[a % len(nodes)])
    elif op == "dangling-input" and nodes and nodes[a % len(nodes)].input:
        nodes[a % len(nodes)].input[0] = plan["text"][:30] or "nowhere"
    elif op in ("init-dims", "init-raw-trunc", "init-type", "external-data", "string-init") and g.initializer:
        t = g.initializer[a % len(g.initializer)]
        if op == "init-dims":
            if t.dims:
                t.dims[b % len(t.dims)] = plan["dim"]
            else:
                t.dims.append(plan["dim"])
        elif op == "init-raw-trunc":
            raw = onnx.numpy_helper.to_array(t).tobytes()
            for fname in ("float_data", "int32_data", "int64_data", "double_data"):
                t.ClearField(fname)
            t.raw_data = raw[:len(raw) * (b % 4) // 4]
        elif op == "init-type":
            t.data_type = plan["etype"] % 32
        elif op == "string-init":
            t.data_type = TensorProto.STRING
            t.ClearField("raw_data")
            t.string_data.append(plan["text"].encode("utf-8", "replace"))
        else:
            raw = t.raw_data or onnx.numpy_helper.to_array(t).tobytes()
            for fname in ("float_data", "int32_data", "int64_data", "double_data", "raw_data"):
                t.ClearField(fname)
            t.data_location = TensorProto.EXTERNAL
            location = plan["location"]
            entries = {"location": location}
            if plan["length"] != 0:
                entries["length"] = str(plan["length"])
            if plan["offset"]:
                entries["offset"] = str(plan["offset"])
            for k, v in entries.items():
                e = t.external_data.add()
                e.key, e.value = k, v
            if location == "weights.bin":
                case.files["weights.bin"] = raw
            elif location == "link":
                case.links["link"] = "/etc/hostname" if b % 2 else "../secret/data"
            elif location == "fifo":
                case.fifos.append("fifo")
    elif op == "opset":
        entry = model.opset_import[0] if model.opset_import else model.opset_import.add()
        entry.version = (0, 1, 6, 7, 25, 999, 2 ** 40)[a % 7]
        if b % 3 == 0:
            entry.domain = plan["text"][:30]
    elif op == "ir-version":
        model.ir_version = (0, 1, 3, 11, 99, 2 ** 40)[a % 6]
    elif op == "nested-if" and g.output:
        depth = plan["count"] % 200
        out = g.output[0].name
        branch = helper.make_graph([helper.make_node("Constant", [], [out], value_float=1.0)], "b", [],
                                   [helper.make_tensor_value_info(out, TensorProto.FLOAT, [])])
        leaf = branch
        for _ in range(depth):               # one branch nests, the other stays a leaf: linear size
            node = helper.make_node("If", ["c"], [out], then_branch=branch, else_branch=leaf)
            branch = helper.make_graph([node], "b", [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, [])])
        g.node.append(helper.make_node("If", [g.input[0].name if g.input else "c"], [out + "_if"],
                                       then_branch=branch, else_branch=branch))
    elif op == "many-nodes" and g.output:
        name = g.output[0].name
        for i in range(plan["count"] * 10):
            g.node.append(helper.make_node("Identity", [name], [f"{name}_id{i}"]))
            name = f"{name}_id{i}"
        g.output[0].name = name
    elif op == "attr" and nodes:
        node = nodes[a % len(nodes)]
        if node.attribute:
            attr = node.attribute[b % len(node.attribute)]
            attr.type = (plan["etype"] % 14) or 1
            attr.i = plan["dim"] if abs(plan["dim"]) < 2 ** 63 else 0
        else:
            node.attribute.append(helper.make_attribute("axis", plan["dim"] if abs(plan["dim"]) < 2 ** 63 else 0))
    elif op == "op-type" and nodes:
        nodes[a % len(nodes)].op_type = OP_TYPES[b % len(OP_TYPES)] if b % 4 else plan["text"][:40]
    elif op == "dup-input" and g.input:
        g.input.append(g.input[0])
    elif op == "no-graph-output":
        del g.output[:]
    case.files[case.main] = model.SerializeToString()
    if op == "file-trick":
        _file_trick(random.Random(a), case, case.main)


def gen_onnx(rng: random.Random, seeds, plan, reader: str) -> Case:
    import onnx

    group = seeds["onnx"]
    bundle = group[plan["seed"] % len(group)] if plan else _pick_seed(rng, group)
    case = Case(reader, 0, "", dict(bundle["files"]), main=bundle["main"])
    case.files.setdefault("../secret/data", b"SECRET" * 8)
    if plan is not None:
        case.kind, case.action = f"hyp-{plan['op']}", plan["action"]
        try:
            model = onnx.load_from_string(bundle["files"][bundle["main"]])
        except Exception:  # noqa: BLE001
            case.kind += "-unparsed-seed"
            return case
        apply_onnx_plan(plan, model, case)
        return case
    case.action = rng.choice(("load", "load", "load", "inspect", "patch"))
    case.kind = "byte-edit"
    case.files[case.main] = mutate_bytes(rng, case.files[case.main], _others(group))
    return case


# --- bindings (MYRIAD and GPU) ----------------------------------------------------------------------------

BINDING_ATTRS = ("global", "local", "size", "port-index", "arg-index", "arg-name", "stage", "max-shaves", "format",
                 "dim", "type", "entry", "filename", "source", "name", "version", "param", "default", "options")
BINDING_OPS = ("attr", "source-path", "source-file-trick", "many-layers", "many-kernels", "xml-trick", "deep",
               "where", "drop", "dup", "text")


def bindings_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 10_000), "op": st.sampled_from(BINDING_OPS), "a": st.integers(0, 10_000),
        "attr": st.sampled_from(BINDING_ATTRS), "value": st.one_of(
            st.sampled_from(HOSTILE_NUMBERS + HOSTILE_TEXT), st.text(max_size=16),
            st.from_regex(r"[BFYXbfyx0-9+\-*/%() .,]{1,24}", fullmatch=True)),
        "count": st.sampled_from((2, 50, 3000)),
        "action": st.sampled_from(("load", "load", "cli", "select")),
    })


def gen_bindings(rng: random.Random, seeds, plan, reader: str) -> Case:
    from lxml import etree

    group = seeds["gpu" if reader == "bindings-gpu" else "myriad"]
    if plan is None:
        plan = {"seed": rng.randrange(10_000), "op": rng.choice(("rand-xml", "rand-text", "rand-bytes")),
                "a": rng.randrange(10_000), "attr": rng.choice(BINDING_ATTRS), "value": _hostile_attr(rng),
                "count": 2, "action": rng.choice(("load", "load", "cli", "select"))}
    bundle = group[plan["seed"] % len(group)]
    main = bundle["main"]
    case = Case(reader, 0, plan["op"], dict(bundle["files"]), main=main, action=plan["action"])
    data = bundle["files"][main]
    op, a = plan["op"], plan["a"]
    prng = random.Random(a)
    if op == "rand-xml":
        case.files[main] = mutate_xml(rng, data, fragment=True)
        return case
    if op == "rand-text":
        case.files[main] = mutate_text(rng, data, _others(group))
        return case
    if op == "rand-bytes":
        case.files[main] = mutate_bytes(rng, data, _others(group))
        return case
    if op == "xml-trick":
        case.files[main] = mutate_xml(prng, data, fragment=True)
        return case
    try:
        root = etree.fromstring(b"<kk-root>" + re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data) + b"</kk-root>",
                                etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError:
        return case
    elements = [e for e in root.iter() if isinstance(e.tag, str) and e is not root]
    with_attr = [e for e in elements if plan["attr"] in e.attrib] or elements
    el = with_attr[a % len(with_attr)]
    if op == "attr":
        el.set(plan["attr"], plan["value"].replace("\0", ""))
    elif op == "source-path":
        sources = [e for e in elements if e.tag == "Source"]
        if sources:
            sources[a % len(sources)].set("filename", ("../secret/data", "/etc/passwd", "/dev/zero", "link.cl",
                                                       "fifo.cl", "dir.cl", "x/../../secret/data", "nul\u2028.cl")[a % 8])
            case.links["link.cl"] = "/dev/zero"
            case.fifos.append("fifo.cl")
            case.dirs.append("dir.cl")
    elif op == "source-file-trick":
        cls = [n for n in case.files if n.endswith(".cl")]
        if cls:
            case.kind += "-" + _file_trick(prng, case, cls[a % len(cls)])
    elif op == "many-layers":
        layer = root[0] if len(root) else None
        if layer is not None:
            text = etree.tostring(layer)
            for _ in range(plan["count"]):
                root.append(etree.fromstring(text))
    elif op == "many-kernels":
        kernels = [e for e in elements if e.tag == "Kernel"]
        if kernels:
            text = etree.tostring(kernels[0])
            for i in range(plan["count"]):
                k = etree.fromstring(text)
                k.set("stage", str(i if a % 2 else i * 7))
                kernels[0].addnext(k)
    elif op == "deep":
        node = el
        for _ in range((300, 3000, 50_000)[a % 3]):
            node = etree.SubElement(node, "Where")
    elif op == "where":
        layers = [e for e in elements if e.tag == "CustomLayer"]
        if layers:
            where = etree.SubElement(layers[0], "Where")
            where.set(("axis", "alpha", "exclusive", "x" * 300)[a % 4], plan["value"].replace("\0", ""))
            layers[0].insert(0, where)
    elif op == "drop" and el.getparent() is not None:
        el.getparent().remove(el)
    elif op == "dup" and el.getparent() is not None:
        el.addnext(etree.fromstring(etree.tostring(el)))
    elif op == "text":
        el.text = plan["value"].replace("\0", "")
    out = etree.tostring(root)
    case.files[main] = out[len(b"<kk-root>"):-len(b"</kk-root>")] if out.startswith(b"<kk-root>") else b""
    return case


# --- kernel.toml ----------------------------------------------------------------------------------------

def toml_dumps(data: dict) -> str:
    """A small TOML writer (tables, arrays of tables, inline values) for the structured spec cases."""
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False).replace("\\u007f", "\\u007F")
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(str(v))

    lines: list[str] = []

    def table(prefix: str, d: dict) -> None:
        scalars = {k: v for k, v in d.items()
                   if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))}
        for k, v in scalars.items():
            lines.append(f"{json.dumps(str(k))} = {value(v)}")
        for k, v in d.items():
            if k in scalars:
                continue
            name = f"{prefix}.{json.dumps(str(k))}" if prefix else json.dumps(str(k))
            if isinstance(v, dict):
                lines.append(f"\n[{name}]")
                table(name, v)
            else:
                for item in v:
                    lines.append(f"\n[[{name}]]")
                    table(name, item)

    table("", data)
    return "\n".join(lines) + "\n"


SPEC_VALUES = (0, 1, -1, 2 ** 31, 2 ** 63 - 1, -(2 ** 63), 0.5, float("nan"), float("inf"), True, "", "x",
               "../../../../etc/passwd", "/etc/passwd", "B*F", "I.X", "input,0", "output,7", "a b", "{{ x }}",
               "f16", "i64", "BFYX", "ANY", [], [1], [0], [2 ** 31, 2 ** 31], [-1, 4], [1, 2, 3, 4, 5, 6],
               [[1]], {}, {"a": 1}, [{"x": 1}], "abs(", "1e400", "Y,F,B", "1,1,1", "kernel.cl.j2")


def spec_strategy():
    from hypothesis import strategies as st

    leaf = st.one_of(st.sampled_from(SPEC_VALUES), st.integers(), st.text(max_size=10), st.floats())
    return st.fixed_dictionaries({
        "seed": st.integers(0, 10_000), "op": st.sampled_from(("set", "set", "set", "delete", "add", "template",
                                                               "template-trick", "deep", "huge-case", "dup-table",
                                                               "many", "file-trick")),
        "path": st.lists(st.integers(0, 1000), min_size=1, max_size=5),
        "value": st.one_of(leaf, st.lists(leaf, max_size=4), st.dictionaries(st.text(max_size=6), leaf, max_size=3)),
        "a": st.integers(0, 10_000), "action": st.sampled_from(("load", "load", "load", "render")),
    })


def _walk_to(data, path):
    """The container and key reached by following `path` (indices into keys/items) into nested data."""
    parent, key = None, None
    node = data
    for step in path:
        if isinstance(node, dict) and node:
            k = list(node)[step % len(node)]
            parent, key, node = node, k, node[k]
        elif isinstance(node, list) and node:
            i = step % len(node)
            parent, key, node = node, i, node[i]
        else:
            break
    return parent, key


def gen_spec(rng: random.Random, seeds, plan, reader: str) -> Case:
    import tomllib

    group = seeds["spec"]
    if plan is None:
        bundle = group[rng.randrange(len(group))]
        case = Case(reader, 0, "text-edit", dict(bundle["files"]), main=bundle["main"],
                    action=rng.choice(("load", "load", "render")))
        text = bundle["files"]["kernel.toml"]
        case.files["kernel.toml"] = (mutate_text(rng, text, _others(group)) if rng.random() < 0.8
                                     else mutate_bytes(rng, text, _others(group)))
        return case
    bundle = group[plan["seed"] % len(group)]
    case = Case(reader, 0, f"hyp-{plan['op']}", dict(bundle["files"]), main=bundle["main"], action=plan["action"])
    data = tomllib.loads(bundle["files"]["kernel.toml"].decode())
    op, a = plan["op"], plan["a"]
    parent, key = _walk_to(data, plan["path"])
    if op == "set" and parent is not None:
        parent[key] = plan["value"]
    elif op == "delete" and parent is not None:
        del parent[key]
    elif op == "add":
        target = parent[key] if parent is not None and isinstance(parent[key], dict) else data
        target[("x-unknown", "name", "op", "family", "inputs", "scalars", "stages", "cases", "params")[a % 9]] = \
            plan["value"]
    elif op in ("template", "template-trick"):
        data.setdefault("kernel", {})["family"] = "custom"
        data["kernel"]["template"] = ("../../../../etc/passwd", "/etc/passwd", "link.j2", "fifo.j2", "dir.j2",
                                      "kernel.cl.j2", "../secret/data", "sub/../kernel.cl.j2")[a % 8]
        case.links["link.j2"] = "/dev/zero" if a % 2 else "../secret/data"
        case.fifos.append("fifo.j2")
        case.dirs.append("dir.j2")
        if op == "template-trick":
            body = ("{% for i in range(10**12) %}x{% endfor %}", "{{ ''.__class__.__mro__ }}", "{{ 1/0 }}",
                    "{% include '/etc/passwd' %}", "{% extends 'kernel.cl.j2' %}", "{{ spec.name * 10**9 }}",
                    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{{ range(10**10)|list }}")[a % 8]
            case.files["kernel.cl.j2"] = body.encode()
            data["kernel"]["template"] = "kernel.cl.j2"
    elif op == "deep":
        nested = 1
        for _ in range((50, 500, 5000)[a % 3]):
            nested = [nested]
        data.setdefault("kernel", {})["x"] = nested
    elif op == "huge-case":
        cases = data.setdefault("cases", [{}])
        if isinstance(cases, list) and cases and isinstance(cases[0], dict):
            cases[0]["shapes"] = [[100000, 100000, 100000], [2 ** 31, 2 ** 31]][: 1 + a % 2]
    elif op == "many":
        inputs = data.get("kernel", {}).get("inputs")
        if isinstance(inputs, list) and inputs:
            data["kernel"]["inputs"] = [dict(inputs[0], name=f"x{i}") for i in range((20, 300, 3000)[a % 3])]
    text = toml_dumps(data)
    if op == "dup-table":
        text += "\n[kernel]\nname = \"again\"\n"
    case.files["kernel.toml"] = text.encode("utf-8", "surrogatepass")
    if op == "file-trick":
        case.kind += "-" + _file_trick(random.Random(a), case, "kernel.toml")
    return case


# --- size expressions ----------------------------------------------------------------------------------

def expr_strategy():
    from hypothesis import strategies as st

    atom = st.one_of(st.sampled_from(("B", "F", "Y", "X", "b", "x", "alpha", "axis", "unknown", "I", "floor", "sqrt",
                                      "0", "1", "7", "2147483647", "2147483648", "0.5", "1e3", "1e40", "3.",
                                      "99999999999", "\u0661", "\u00b2", "")), st.integers(0, 2 ** 40).map(str))
    tree = st.recursive(atom, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(" + - * / % ,".split(" ")), inner).map(lambda t: "".join(t)),
        inner.map(lambda s: f"({s})"),
        st.tuples(st.sampled_from(FUNCS), inner).map(lambda t: f"{t[0]}({t[1]})")), max_leaves=24)
    variables = st.dictionaries(st.sampled_from(("B", "F", "Y", "X", "alpha", "axis", "x", "w")),
                                st.one_of(st.integers(-(2 ** 40), 2 ** 40), st.floats(), st.booleans(),
                                          st.text(max_size=4), st.none()), max_size=5)
    return st.fixed_dictionaries({"text": st.one_of(tree, st.text(max_size=30)), "variables": variables,
                                  "shape": st.lists(st.integers(-3, 2 ** 33), max_size=7),
                                  "attrs": st.dictionaries(st.text(max_size=5), st.one_of(
                                      st.integers(), st.floats(), st.text(max_size=8), st.booleans(),
                                      st.lists(st.integers(), max_size=3)), max_size=4)})


FUNCS = ("floor", "ceil", "round", "abs", "sqrt", "exp", "")


def gen_expr(rng: random.Random, seeds, plan, reader: str) -> Case:
    if plan is None:
        text = rng.choice(seeds["expr"])["text"].encode()
        op = rng.random()
        if op < 0.4:
            text = mutate_text(rng, text)
        elif op < 0.7:
            text = mutate_bytes(rng, text)
        else:
            depth = rng.choice((10, 1000, 100_000))
            text = b"(" * depth + text + b")" * rng.choice((depth, depth - 1, 0))
        plan = {"text": text.decode("utf-8", "replace"), "variables": {"B": 1, "F": 3, "Y": 8, "X": 8},
                "shape": [1, 3, 8, 8], "attrs": {"alpha": "0.5", "axis": rng.choice(HOSTILE_NUMBERS)}}
        kind = "mutated"
    else:
        kind = "grammar"
    return Case(reader, 0, kind, params=plan)


# --- npz -------------------------------------------------------------------------------------------------

def _npy_bytes(shape, descr: str = "<f4", fortran: bool = False, data: bytes | None = None,
               version: tuple[int, int] = (1, 0), header: str | None = None) -> bytes:
    header = header if header is not None else \
        f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {tuple(shape)!r}, }}"
    raw = header.encode("latin1", "replace")
    pad = 64 - (10 + len(raw) + 1) % 64
    raw += b" " * pad + b"\n"
    if version[0] == 1:
        head = b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(raw) & 0xFFFF)
    else:
        head = b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(raw))
    if data is None:
        data = b"\0" * 16
    return head + raw + data


NPY_SHAPES = ((), (4,), (1, 3, 4, 4), (0,), (10 ** 12,), (2 ** 31, 2 ** 31), (-1,), (2 ** 62, 4), (1,) * 40,
              (100_000, 100_000), (3, -4))
NPY_DESCRS = ("<f4", "<f2", "<f8", "|u1", "<i8", "|b1", "O", "<U10", "|S4", "<c8", "|V8", "<M8[s]",
              "[('a', '<f4')]", "x", "<f16", ">f4", "|O")
NPZ_OPS = ("shape", "descr", "fortran", "header", "version", "name", "dup-name", "method", "encrypted", "bomb",
           "truncated", "many", "nested", "not-npy", "declared-size", "file-trick", "comment", "crc", "zip64")


def npz_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "op": st.sampled_from(NPZ_OPS), "shape": st.sampled_from(NPY_SHAPES), "descr": st.sampled_from(NPY_DESCRS),
        "a": st.integers(0, 10_000), "name": st.sampled_from(("in0", "in1", "in00", "in-1", "../in0", "/in0",
                                                              "in0.npy/x", "", "in\u0660", "in2", "out0", "IN0")),
        "header": st.sampled_from(("", "{", "{'descr': '<f4'}", "__import__('os').system('true')",
                                   "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                                   "{'descr': '<f4', 'fortran_order': 1, 'shape': [2]}",
                                   "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
                                   "{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}",
                                   "(" * 300 + ")" * 300)),
        "action": st.sampled_from(("emulate", "verify", "verify", "emulate", "cli")),
    })


def _zip(entries: list[tuple[str, bytes]], method=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buffer.getvalue()


_BOMB: bytes | None = None
BOMB_BYTES = 4 << 30


def _bomb() -> bytes:
    """An npz of a few MiB whose one member inflates to 4 GiB of zeros (a real decompression bomb)."""
    global _BOMB
    cache = Path(os.environ.get("FUZZ_WORK", tempfile.gettempdir())) / "bomb.npz"
    if _BOMB is None and cache.is_file():
        _BOMB = cache.read_bytes()
    if _BOMB is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            with z.open(zipfile.ZipInfo("in0.npy", (2020, 1, 1, 0, 0, 0)), "w", force_zip64=True) as member:
                member._compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
                member.write(_npy_bytes((BOMB_BYTES // 4,), data=b""))
                zero = b"\0" * (1 << 24)
                for _ in range(BOMB_BYTES // len(zero)):
                    member.write(zero)
        _BOMB = buffer.getvalue()
        with contextlib.suppress(OSError):
            cache.write_bytes(_BOMB)
    return _BOMB


def gen_npz(rng: random.Random, seeds, plan, reader: str) -> Case:
    group = seeds["npz"]
    bundle = rng.choice(group)
    if plan is None:
        case = Case(reader, 0, "byte-edit", dict(bundle["files"]), main=bundle["main"],
                    action=rng.choice(("emulate", "verify", "cli")), params={"prefix": bundle["prefix"]})
        case.files[case.main] = mutate_bytes(rng, case.files[case.main], _others(group))
        return case
    op, a = plan["op"], plan["a"]
    case = Case(reader, 0, f"hyp-{op}", {}, main="inputs.npz", action=plan["action"], params={"prefix": "in"})
    good = ("in0.npy", _npy_bytes((4,), data=b"\0" * 16))
    entries = [good]
    method = zipfile.ZIP_STORED
    if op == "shape":
        entries = [("in0.npy", _npy_bytes(plan["shape"], data=b"\0" * (a % 64)))]
    elif op == "descr":
        entries = [("in0.npy", _npy_bytes((2,), plan["descr"], data=b"\x01" * 64))]
    elif op == "fortran":
        entries = [("in0.npy", _npy_bytes((2, 3), fortran=True, data=b"\0" * 24))]
    elif op == "header":
        entries = [("in0.npy", _npy_bytes((), header=plan["header"]))]
    elif op == "version":
        entries = [("in0.npy", _npy_bytes((4,), version=((1, 0), (2, 0), (3, 0), (9, 9), (0, 0))[a % 5]))]
    elif op == "name":
        entries = [(plan["name"] + ".npy", good[1])]
    elif op == "dup-name":
        entries = [good, good]
    elif op == "method":
        method = (zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)[a % 3]
    elif op == "many":
        entries = [(f"in{i}.npy", good[1]) for i in range((100, 3000, 20_000)[a % 3])]
    elif op == "nested":
        entries = [("in0.npy", _zip([good]))]
    elif op == "not-npy":
        entries = [("in0.npy", (b"garbage", b"\x93NUMPY", b"", b"\x93NUMPY\x01\x00\xff\xff")[a % 4])]
    data = _zip(entries, method)
    if op == "encrypted":
        data = bytearray(data)
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            at = data.find(sig)
            flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
            data[flag_at] |= 1
        data = bytes(data)
    elif op == "bomb":
        data = _bomb()
    elif op == "truncated":
        data = data[:len(data) * (a % 10) // 10]
    elif op == "declared-size":
        data = bytearray(data)
        cd = data.find(b"PK\x01\x02")
        struct.pack_into("<I", data, cd + 24, (0xFFFFFFFF, 0, 1, 2 ** 31)[a % 4])      # uncompressed size
        data = bytes(data)
    elif op == "crc":
        data = bytearray(data)
        cd = data.find(b"PK\x01\x02")
        data[cd + 16] ^= 0xFF
        data = bytes(data)
    elif op == "comment":
        data = data + b"x" * (a % 100)
    elif op == "zip64":
        data = bytearray(data)
        at = data.find(b"PK\x05\x06")
        struct.pack_into("<H", data, at + 8, 0xFFFF)
        data = bytes(data)
    case.files["inputs.npz"] = data
    if op == "file-trick":
        case.kind += "-" + _file_trick(random.Random(a), case, "inputs.npz")
    return case


# --- blobs, kernel ELFs, NN Archives ---------------------------------------------------------------------

def blob_fields(data: bytes) -> list[int]:
    """Byte offsets of the u32 fields of a blob's header and stage records (the structure to aim at)."""
    header_at, count = 52, 20
    fields = [header_at + 4 * i for i in range(count)]
    if len(data) < header_at + 4 * count:
        return fields
    words = struct.unpack_from(f"<{count}I", data, header_at)
    stages, offset = words[6], words[18]
    fields.extend(range(words[16], min(words[18], words[16] + 1024, len(data) - 3), 4))    # the I/O entries
    for _ in range(min(stages, 4096)):
        if offset + 16 > len(data):
            break
        size = struct.unpack_from("<I", data, offset)[0]
        if size < 24 or offset + size > len(data):
            break
        fields.extend(range(offset, offset + size, 4))
        offset += size
    return fields


def elf_fields(data: bytes) -> list[int]:
    """Byte offsets of the ELF header's, the section headers' and the metadata section's fields."""
    fields = [32, 46, 48, 50, 28, 42]                       # e_shoff, e_shentsize, e_shnum, e_shstrndx, e_phoff
    if len(data) < 52:
        return fields
    shoff, = struct.unpack_from("<I", data, 32)
    shnum, shstrndx = struct.unpack_from("<HH", data, 48)
    for i in range(min(shnum, 64)):
        at = shoff + 40 * i
        if at + 40 > len(data):
            break
        fields.extend(range(at, at + 40, 4))
        offset, size = struct.unpack_from("<II", data, at + 16)
        if size and offset + size <= len(data) and size < 1 << 16:
            fields.extend(range(offset, offset + min(size, 1024), 4))
    return fields


def struct_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 10_000), "field": st.integers(0, 100_000), "edits": st.integers(1, 3),
        "value": st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2 ** 32 - 1)),
        "width": st.sampled_from((4, 4, 4, 2, 1)), "a": st.integers(0, 10_000),
        "action": st.sampled_from(("api", "api", "cli")),
    })


def _aim(plan: dict, data: bytes, fields: list[int]) -> bytes:
    data = bytearray(data)
    prng = random.Random(plan["a"])
    for i in range(plan["edits"]):
        at = fields[(plan["field"] + i * 7919) % len(fields)] if fields else 0
        value = plan["value"] if i == 0 else prng.choice(INTERESTING)
        width = plan["width"]
        if at + width <= len(data):
            data[at:at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return bytes(data)


def gen_blob(rng: random.Random, seeds, plan, reader: str) -> Case:
    group = seeds["blob"]
    bundle = group[plan["seed"] % len(group)] if plan else rng.choice(group)
    case = Case(reader, 0, "", dict(bundle["files"]), main=bundle["main"])
    data = bundle["files"][bundle["main"]]
    if plan is None:
        case.kind, case.action = "byte-edit", rng.choice(("api", "api", "cli"))
        case.files[case.main] = mutate_bytes(rng, data, _others(group))
    else:
        case.kind, case.action = "hyp-field", plan["action"]
        case.files[case.main] = _aim(plan, data, blob_fields(data))
    return case


def gen_elf(rng: random.Random, seeds, plan, reader: str) -> Case:
    group = seeds["elf"]
    bundle = group[plan["seed"] % len(group)] if plan else rng.choice(group)
    case = Case(reader, 0, "", dict(bundle["files"]), main=bundle["main"], action="api")
    data = bundle["files"][bundle["main"]]
    if plan is None:
        case.kind = "byte-edit"
        case.files[case.main] = mutate_bytes(rng, data, _others(group))
    else:
        case.kind = "hyp-field"
        case.files[case.main] = _aim(plan, data, elf_fields(data))
    return case


ARCHIVE_OPS = ("blob-field", "blob-bytes", "folder-none", "folder-two", "folder-trick", "leftover", "out-dir",
               "out-parent-file", "out-name", "out-symlink", "name", "mean", "scale", "source-trick", "clean")


def archive_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "seed": st.integers(0, 10_000), "op": st.sampled_from(ARCHIVE_OPS), "field": st.integers(0, 100_000),
        "edits": st.integers(1, 2), "value": st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2 ** 32 - 1)),
        "width": st.sampled_from((4, 4, 1)), "a": st.integers(0, 10_000),
        "text": st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS + ["1,2,3", "nan,nan,nan", "1e400", "0,0,0"]),
        "action": st.sampled_from(("api", "cli")),
    })


def gen_archive(rng: random.Random, seeds, plan, reader: str) -> Case:
    group = seeds["blob"]
    if plan is None:
        plan = {"seed": rng.randrange(10_000), "op": "blob-bytes", "field": 0, "edits": 1, "value": 0, "width": 4,
                "a": rng.randrange(10_000), "text": "", "action": rng.choice(("api", "cli"))}
    bundle = group[plan["seed"] % len(group)]
    data = bundle["files"][bundle["main"]]
    op, a = plan["op"], plan["a"]
    case = Case(reader, 0, op, {"model.blob": data}, main="model.blob", action=plan["action"],
                params={"out": "model.tar.xz"})
    if op == "blob-field":
        case.files["model.blob"] = _aim(plan, data, blob_fields(data))
    elif op == "blob-bytes":
        case.files["model.blob"] = mutate_bytes(random.Random(a), data, _others(group))
    elif op in ("folder-none", "folder-two", "folder-trick", "leftover"):
        case.files = {"model.xml": b"<net/>"}
        if op == "folder-two":
            case.files.update({"a.blob": data, "b.blob": data})
        elif op == "folder-trick":
            case.files["model.blob"] = data
            case.kind += "-" + _file_trick(random.Random(a), case, "model.blob")
        elif op == "leftover":
            case.files.update({"model.blob": data, ".model.blob.x1y2.tmp": data[:100], ".x.staging/model.blob": data})
        case.main = "."
    elif op == "out-dir":
        case.params["out"] = "existing.tar.xz"
        case.params["out-dir"] = True
    elif op == "out-parent-file":
        case.params["out"] = "file/model.tar.xz"
        case.params["out-file"] = "file"
    elif op == "out-name":
        case.params["out"] = ("model.tar.gz", "model", ".tar.xz", "../model.tar.xz", "a b.tar.xz",
                              "x" * 300 + ".tar.xz")[a % 6]
    elif op == "out-symlink":
        case.params["out-symlink"] = True
    elif op == "name":
        case.params["name"] = plan["text"]
    elif op in ("mean", "scale"):
        case.params[op] = plan["text"]
    elif op == "source-trick":
        case.kind += "-" + _file_trick(random.Random(a), case, "model.blob")
    return case


# --- blobconverter requests (kernelkit serve's parser) ---------------------------------------------------

REQUEST_OPS = ("bytes", "config", "name", "field", "query", "boundary", "truncate", "parts", "clean")
REQUEST_FIELDS = {"name": "model", "myriad_shaves": "4", "myriad_params_advanced": "-ip U8", "data_type": "FP16",
                  "download_ir": "False", "zoo_type": "intel"}
REQUEST_CONFIG = ("files:\n- name: FP16/model.onnx\n  source:\n    $type: http\n    url: $REQUEST/model.onnx\n"
                  "framework: onnx\nmodel_optimizer_args:\n- --mean_values=[127.5,127.5,127.5]\n"
                  "- --scale_values=[255,255,255]\n- --reverse_input_channels\n- --data_type=FP16\n"
                  "- --input_model=$dl_dir/FP16/model.onnx\ntask_type: detection\n")


def encode_request(fields: dict, files: dict, boundary: str = "kernelkitfuzz") -> tuple[str, bytes]:
    """A multipart form as blobconverter's client (requests) sends it."""
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(
            "utf-8", "surrogateescape") + value.encode("utf-8", "surrogateescape") + b"\r\n"
    for name, data in files.items():
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8", "surrogateescape") + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def request_strategy():
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "op": st.sampled_from(REQUEST_OPS), "a": st.integers(0, 10_000),
        "text": st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS + ["--bogus", "-c x", "-ip", "2022.3_RVC3",
                                                                  "True", "a" * 300 + ".onnx", "../x.onnx"]),
        "key": st.sampled_from(tuple(REQUEST_FIELDS) + ("config", "version", "no_cache", "use_zoo", "file")),
    })


def gen_request(rng: random.Random, seeds, plan, reader: str) -> Case:
    if plan is None:
        plan = {"op": rng.choice(("bytes", "config", "truncate")), "a": rng.randrange(10_000),
                "text": rng.choice(HOSTILE_TEXT), "key": "config"}
    op, prng, text, key = plan["op"], random.Random(plan["a"]), plan["text"], plan["key"]
    fields, query = dict(REQUEST_FIELDS), {"version": "2021.4", "no_cache": "False"}
    config, model_name, model = REQUEST_CONFIG.encode(), "model.onnx", b"\x08\x06" + bytes(64)
    boundary = "kernelkitfuzz"
    if op == "config":
        config = mutate_text(prng, config)
    elif op == "name":
        model_name = text
    elif op == "field":
        if key in REQUEST_FIELDS:
            fields[key] = text
        elif key in ("version", "no_cache"):
            query[key] = text
        elif key == "use_zoo":
            fields.update(use_zoo="True", name=text)
            config = None
        else:
            fields[text or "x"] = "1"
    elif op == "query":
        query = {text: text, **({"version": text} if prng.random() < 0.5 else {})}
    elif op == "boundary":
        boundary = text or '"'
    files = {"config": config} if config is not None else {}
    files[model_name] = model
    ctype, body = encode_request(fields, files, boundary)
    if op == "bytes":
        body = mutate_bytes(prng, body)
    elif op == "truncate":
        body = body[:prng.randrange(len(body) + 1)]
    elif op == "parts":
        body = body.replace(b"\r\n\r\n", b"\r\n", 1) if prng.random() < 0.5 else \
            body * prng.choice((2, 70))
    from urllib.parse import urlencode

    return Case(reader, 0, op, params={"ctype": ctype, "query": urlencode(query), "body": body})


GENERATORS = {
    "ir-xml": (gen_ir, ir_strategy),
    "ir-bin": (gen_bin, bin_strategy),
    "onnx": (gen_onnx, onnx_strategy),
    "bindings-myriad": (gen_bindings, bindings_strategy),
    "bindings-gpu": (gen_bindings, bindings_strategy),
    "kernel-toml": (gen_spec, spec_strategy),
    "expr": (gen_expr, expr_strategy),
    "npz": (gen_npz, npz_strategy),
    "nn-archive": (gen_archive, archive_strategy),
    "blob": (gen_blob, struct_strategy),
    "kernel-elf": (gen_elf, struct_strategy),
    "blobconverter-request": (gen_request, request_strategy),
}
READERS = tuple(GENERATORS)
NEEDS_BLOBS = {"nn-archive", "blob"}
# The per-case time limit: generous, because the machines are shared and a hang is a case that never ends.
TIME_LIMIT = {"onnx": 90.0, "ir-xml": 60.0, "ir-bin": 60.0, "nn-archive": 60.0, "npz": 60.0}
DEFAULT_TIME_LIMIT = 30.0


# ------------------------------------------------------------------------------------------------ worker side

class CliRun:
    def __init__(self, code, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr


def _cli(*argv) -> CliRun:
    from kernelkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:               # argparse: usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return CliRun(code, out.getvalue(), err.getvalue())


def _touch_model(model, consts: bool) -> None:
    """What every consumer of a loaded model reads: ports, dims, names, attributes, order, the XML, constants."""
    for layer in model.layers:
        for port in layer.inputs + layer.outputs:
            port.dims, port.names, port.precision, port.element_type  # noqa: B018
        dict(layer.attrs)
        if consts and layer.type.lower() == "const":
            model.const_value(layer)
    model.topological_order()
    model.to_xml_bytes()


def run_model(case: Case, inp: Path, out: Path):
    from kernelkit.ir.load import load_model

    path = inp / case.main
    if case.action == "inspect":
        return _cli("inspect", path, "--target", "2021.4")
    if case.action == "patch":
        return _cli("patch", path, "-o", out / "patched", "--target", "2021.4")
    model = load_model(path)
    _touch_model(model, consts=case.reader == "ir-bin")
    if case.action == "save":
        model.save(out / "model.xml")
    return None


def run_bindings(case: Case, inp: Path, out: Path):
    gpu_reader = case.reader == "bindings-gpu"
    path = inp / case.main
    if case.action == "cli":
        return _cli("validate", *(["--gpu"] if gpu_reader else []), path)
    if gpu_reader:
        from kernelkit.kernel.bindings import expr, gpu

        layers = gpu.load(path)
        gpu.validate(layers)
        if case.action == "select":
            for layer in layers[:3]:
                for text in layer.global_ + layer.local:
                    with contextlib.suppress(expr.ExprError):     # the expression reader's own clear error
                        gpu.evaluate_work_size(text, [1, 3, 8, 8])
        return None
    from kernelkit.kernel.bindings import myriad_check, myriad_read, myriad_select

    layers = myriad_read.load(path)
    myriad_check.validate(layers, {"alpha": "0.5", "axis": "1"})
    if case.action == "select":
        for layer in layers[:3]:
            myriad_select.select_with_reasons(layers, layer.name, {"alpha": "0.5", "exclusive": "true"})
    return None


def run_spec(case: Case, inp: Path, out: Path):
    from kernelkit.kernel import render
    from kernelkit.kernel.spec import load_spec

    spec = load_spec(inp)
    if case.action == "render":
        render.render_sources(spec)
        render.render_myriad_xml(spec)
        if len(spec.stages) == 1:
            render.render_gpu_xml(spec)
    return None


def run_expr(case: Case, inp: Path, out: Path):
    from kernelkit.kernel.bindings import expr

    p = case.params
    variables = p.get("variables") or {}
    with contextlib.suppress(expr.ExprError):
        expr.parse(p["text"])
    with contextlib.suppress(expr.ExprError):
        expr.evaluate_value(p["text"], variables)
    for value in (p.get("attrs") or {}).values():
        expr.numeric_attribute(value)
    names = expr.size_variables(p.get("shape") or [], p.get("attrs"))
    return expr.evaluate(p["text"], names)


ROWS_FOLDER = "rows"


def run_npz(case: Case, inp: Path, out: Path):
    path = inp / case.main
    if case.action == "emulate":
        from kernelkit.cli.emulate import _read_inputs

        return _read_inputs(path)
    if case.action == "verify":
        from kernelkit.doctor.verify import _load_npz

        return _load_npz(path, case.params.get("prefix", "in"), "IN.npz")
    return _cli("emulate", inp / ROWS_FOLDER / "rows.xml", "--type", "Elu", "--inputs", path, "--out",
                out / "out.npz", "--attr", "alpha=0.5", "--timeout", "20")


def run_archive(case: Case, inp: Path, out: Path):
    p = case.params
    source = inp if case.main == "." else inp / case.main
    target = out / p["out"]
    if p.get("out-dir"):
        target.mkdir(parents=True)
    if p.get("out-file"):
        (out / p["out-file"]).write_bytes(b"not a folder")
    if p.get("out-symlink"):
        target.symlink_to(inp / "victim")
    # A folder source is packed by its .blob (--blob): the cases aim at finding that blob, not at compiling.
    blob_only = case.main == "."
    if case.action == "cli":
        argv = ["archive", source, "-o", target] + (["--blob"] if blob_only else [])
        for key in ("name", "mean", "scale"):
            if key in p:
                argv += [f"--{key}={p[key]}"]
        return _cli(*argv)
    from kernelkit.delivery.archive import build_archive

    def floats(text):
        try:
            return [float(v) for v in text.split(",")] if text is not None else None
        except ValueError:
            return None               # the CLI refuses such text itself; the API takes numbers

    build_archive(source, target, name=p.get("name"), mean=floats(p.get("mean")), scale=floats(p.get("scale")),
                  superblob=False if blob_only else None)
    return None


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def check_archive(case: Case, inp: Path, out: Path) -> str | None:
    """A written archive must be whole: config.json and NAME.blob, regular members, the source's blob bytes."""
    import tarfile

    target = out / case.params["out"]
    if not target.is_file() or target.is_symlink():
        return None
    with tarfile.open(target, "r:xz") as tar:
        members = tar.getmembers()
        names = sorted(m.name for m in members)
        if len(names) != 2 or "config.json" not in names or not all(m.isfile() for m in members) or \
                any("/" in n or n.startswith(".") for n in names):
            return f"archive members {names}"
        config = json.loads(tar.extractfile("config.json").read(), parse_constant=_no_constant)
        blob_name = config["model"]["metadata"]["path"]
        blob = tar.extractfile(blob_name).read()
    source = inp / case.main if case.main != "." else next(inp.glob("*.blob"))
    if blob != source.read_bytes():
        return "archive blob differs from the source blob"
    return None


def run_blob(case: Case, inp: Path, out: Path):
    from kernelkit.myriad import blob, blob_reader, stages

    path = inp / case.main
    if case.action == "cli":
        return _cli("blob", "info", *(["--json"] if case.index % 2 else []), path)
    blob.read_header(path)
    model = blob_reader.read_blob(path)           # the whole reader first: its errors name the file
    json.dumps(model.to_dict())
    from kernelkit.cli.blob import format_info

    format_info(model)
    data = path.read_bytes()
    blob.read_header(data)
    stages.read_stages(data)
    stages.custom_stages(data)
    return None


def run_elf(case: Case, inp: Path, out: Path):
    from kernelkit.myriad import check_elf

    data = (inp / case.main).read_bytes()
    check_elf.read_note(data)
    check_elf.is_check_elf(data)
    check_elf.read_metadata(data)
    return None


def run_request(case: Case, inp: Path, out: Path):
    """kernelkit serve's request parser up to the compile (`dry`), with a local zoo in the case's folder."""
    from kernelkit.compat.server import Service, Settings

    p = case.params
    service = Service(Settings(cache_dir=None, zoo_dir=inp))
    return service.prepare(p["query"] + "&dry=True", p["ctype"], p["body"])


RUNNERS = {"ir-xml": run_model, "ir-bin": run_model, "onnx": run_model, "bindings-myriad": run_bindings,
           "bindings-gpu": run_bindings, "kernel-toml": run_spec, "expr": run_expr, "npz": run_npz,
           "nn-archive": run_archive, "blob": run_blob, "kernel-elf": run_elf,
           "blobconverter-request": run_request}
PATHLESS = {"expr", "kernel-elf", "blobconverter-request"}     # readers of bytes or text: their errors have no file to name


def materialize(case: Case, d: Path) -> None:
    inp = d / "in"
    for sub in ("in", "out", "secret", "cwd"):
        (d / sub).mkdir(parents=True)
    (inp / "victim").write_bytes(b"victim: must stay unchanged\n")
    (d / "secret" / "data").write_bytes(b"SECRET" * 8)
    if case.reader == "npz" and case.action == "cli":
        (inp / ROWS_FOLDER).mkdir()
        (inp / ROWS_FOLDER / "rows.xml").write_text(ROWS_XML)
        (inp / ROWS_FOLDER / "scale_rows.cl").write_text(ROWS_CL)
    for name, data in case.files.items():
        target = (inp / name) if not name.startswith("../") else d / name[3:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for name in case.dirs:
        (inp / name).mkdir(parents=True, exist_ok=True)
    for name in case.fifos:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(inp / name)
    for name, target in case.links.items():
        with contextlib.suppress(FileExistsError):
            (inp / name).symlink_to(target)
    for name, size in case.sparse.items():
        with open(inp / name, "wb") as handle:
            handle.truncate(size)


def snapshot(*folders: Path) -> dict:
    """Every entry under the folders: its kind and content hash (links: target; FIFOs and sparse files: size)."""
    found = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = os.lstat(p)
                if p.is_symlink():
                    found[str(p)] = ("link", os.readlink(p))
                elif Path(dirpath, name).is_dir():
                    found[str(p)] = ("dir",)
                elif not os.path.isfile(p) or st.st_size > 64 << 20:
                    found[str(p)] = ("special", st.st_mode, st.st_size, st.st_mtime_ns)
                else:
                    found[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return found


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "kernelkit" in f.filename and "fuzz_inputs" not in f.filename] or frames[-1:]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    message = re.sub(r"\d+", "N", str(exc))[:80]
    return f"{type(exc).__name__} at {where}: {message}"


EXPECTED_OUTPUTS = {"patch": ["patched"], "save": ["model.xml", "model.bin"], "cli": ["out.npz"]}


def execute(case: Case, base: Path) -> Result:
    from kernelkit.core.errors import KernelkitError

    d = base / "case"
    if d.exists():
        shutil.rmtree(d)
    materialize(case, d)
    inp, out = d / "in", d / "out"
    before = snapshot(inp, d / "secret")
    os.chdir(d / "cwd")
    t0 = time.perf_counter()
    result = Result("accepted")
    try:
        outcome = RUNNERS[case.reader](case, inp, out)
        if isinstance(outcome, CliRun):
            if "Traceback (most recent call last)" in outcome.stderr + outcome.stdout:
                tail = (outcome.stderr.strip().splitlines() or ["?"])[-1]
                result = Result("traceback", f"CLI printed a traceback: {re.sub(r'[0-9]+', 'N', tail)[:100]}",
                                outcome.stderr[-3000:])
            elif outcome.code == 2:
                message = outcome.stderr.strip()
                result = Result("error", detail=message[-500:])
                result.names_file = case.reader in PATHLESS or str(d) in message or "--" in message
                if not message:
                    result = Result("traceback", "CLI exit 2 without a message")
            elif outcome.code not in (0, 1, 3, 4):
                result = Result("traceback", f"CLI exit code {outcome.code}", outcome.stderr[-3000:])
    except KernelkitError as exc:
        result = Result("error", detail=str(exc)[:500])
        result.names_file = case.reader in PATHLESS or exc.path is not None or "--" in str(exc)
    except RecursionError as exc:
        result = Result("traceback", _signature(exc), traceback.format_exc()[-4000:])
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzer counts
        result = Result("traceback", _signature(exc), traceback.format_exc()[-4000:])
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from a reader
        result = Result("traceback", _signature(exc), traceback.format_exc()[-4000:])
    result.seconds = time.perf_counter() - t0
    os.chdir(base)
    if case.reader == "nn-archive" and result.status == "accepted":
        try:
            problem = check_archive(case, inp, out)
        except Exception as exc:  # noqa: BLE001 - an archive that does not read back is a broken output
            problem = f"archive does not read back: {type(exc).__name__}: {exc}"
        if problem:
            result.partial, result.detail = True, problem
    after = snapshot(inp, d / "secret")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        result.modified = True
        result.detail += f"\ninputs changed: {[c[0] for c in changed][:5]}"
    left = _listing(out)
    expected = set(EXPECTED_OUTPUTS.get(case.action, []))
    if case.reader == "nn-archive":
        expected = {case.params["out"], "file", case.params["out"].split("/")[0]}
    stray = [n for n in left if n.split("/")[0] not in expected] if result.status == "accepted" else left
    if case.reader == "nn-archive" and result.status != "accepted":
        pre = {"existing.tar.xz"} if case.params.get("out-dir") else set()
        pre |= {"file"} if case.params.get("out-file") else set()
        pre |= {case.params["out"]} if case.params.get("out-symlink") else set()
        stray = [n for n in left if n not in pre]
    stray += [f"cwd/{n}" for n in _listing(d / "cwd")]
    if stray:
        result.partial = True
        result.detail += f"\nleft behind: {stray[:5]}"
    shutil.rmtree(d, ignore_errors=True)
    return result


def _send(stream, obj) -> None:
    data = pickle.dumps(obj)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _recv(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


def worker_main(work: Path) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    log = os.open(work / f"worker-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True)
    base = Path(tempfile.mkdtemp(prefix="fuzz-worker-", dir=work))
    while True:
        case = _recv(proto_in)
        if case is None:
            break
        try:
            result = execute(case, base)
        except Exception as exc:  # noqa: BLE001 - the harness itself failed on this case
            result = Result("traceback", f"harness: {_signature(exc)}", traceback.format_exc()[-4000:])
        _send(proto_out, result)
    shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ parent side

def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its waited-for children (Linux /proc), 0.0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# A case is a hang when it used more CPU than its reader's limit, or (blocked, or starved by other work on a
# shared machine) did not finish within WALL_FACTOR times the limit.
WALL_FACTOR = 10


class Worker:
    def __init__(self, work: Path):
        env = dict(os.environ, DEPTHAI_LEVEL="error", OMP_NUM_THREADS="1", PYTHONHASHSEED="0",
                   FUZZ_WORK=str(work))
        # the kernelkit of this checkout, not the one the environment installed (a run must fuzz one fixed tree)
        code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'benchmarks')!r}]; import fuzz_inputs; "
                f"fuzz_inputs.main(['--worker', '--work', {str(work)!r}])")
        self.proc = subprocess.Popen([sys.executable, "-c", code],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, env=env,
                                     cwd=str(work))
        self.done = 0
        self.case: Case | None = None
        self.deadline = 0.0

    def submit(self, case: Case, limit: float) -> None:
        self.case = case
        self.limit = limit
        self.started = time.monotonic()
        self.cpu_start = cpu_seconds(self.proc.pid)
        self.deadline = self.started + limit
        _send(self.proc.stdin, case)

    def overdue(self, now: float) -> str | None:
        """Why the running case counts as a hang, or None (then the deadline moves on)."""
        cpu = cpu_seconds(self.proc.pid) - self.cpu_start
        if cpu > self.limit:
            return f"{cpu:.0f} s of CPU, above the {self.limit:g} s limit"
        if now - self.started > WALL_FACTOR * self.limit:
            return f"no answer in {now - self.started:.0f} s ({cpu:.1f} s of CPU)"
        self.deadline = now + max(1.0, self.limit - cpu) / 2
        return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def run_cases(cases, workers: int, work: Path, on_result) -> None:
    """Run every case on `workers` worker processes, each case under its reader's time limit."""
    pending = iter(cases)
    pool: list[Worker] = []
    sel = selectors.DefaultSelector()

    def start() -> Worker:
        w = Worker(work)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        pool.append(w)
        return w

    def retire(w: Worker, kill: bool) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.kill() if kill else w.close()

    def feed(w: Worker) -> bool:
        case = next(pending, None)
        if case is None:
            return False
        w.submit(case, TIME_LIMIT.get(case.reader, DEFAULT_TIME_LIMIT))
        return True

    for _ in range(workers):
        if not feed(start()):
            break
    while any(w.case is not None for w in pool):
        busy = [w for w in pool if w.case is not None]
        timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
        events = sel.select(timeout)
        for key, _ in events:
            w = key.data
            reply = _recv(w.proc.stdout)
            case, w.case = w.case, None
            if reply is None:                                    # the worker died
                code = w.proc.wait()
                reply = Result("crash", f"worker died (exit {code}) on {case.kind}")
                retire(w, kill=True)
                w = start()
            else:
                w.done += 1
                if w.done >= RECYCLE_AFTER:
                    retire(w, kill=False)
                    w = start()
            on_result(case, reply)
            feed(w)
        now = time.monotonic()
        for w in [w for w in pool if w.case is not None and now > w.deadline]:
            why = w.overdue(now)
            if why is None:
                continue
            case = w.case
            retire(w, kill=True)
            on_result(case, Result("hang", f"hang: {case.kind}, {case.action}", why))
            feed(start())
    for w in list(pool):
        retire(w, kill=False)


# ------------------------------------------------------------------------------------------------ campaign

COLUMNS = ("cases", "accepted", "errors", "tracebacks", "hangs", "crashes", "partial", "modified", "unnamed")
STATUS_COLUMN = {"accepted": "accepted", "error": "errors", "traceback": "tracebacks", "hang": "hangs",
                 "crash": "crashes"}


def generate(reader: str, n: int, seeds: dict, seed: int):
    """n cases for `reader`: half structured (hypothesis plans), half random mutations of the seeds."""
    gen, strategy = GENERATORS[reader]
    n_plans = n // 2
    plans: list = []
    chunk = 500
    offset = sum(map(ord, reader))
    rng = random.Random(seed * 1_000_003 + offset)
    for index in range(n):
        plan = None
        if index % 2 == 0 and len(plans) < n_plans + 1:
            if not plans:
                plans.extend(draw_examples(strategy(), min(chunk, n_plans - index // 2 + 1), seed + offset + index))
            plan = plans.pop(0) if plans else None
        try:
            case = gen(rng, seeds, plan, reader)
        except Exception as exc:  # noqa: BLE001 - a generator bug must not stop the campaign
            case = Case(reader, index, f"generator failed: {type(exc).__name__}: {exc}"[:120],
                        files={"x": b""}, main="x", action="load")
        case.index = index
        yield case


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    signatures: dict = field(default_factory=dict)       # signature -> [count, example kind, column]
    kinds: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def _save_failure(work: Path, case: Case, result: Result, column: str) -> None:
    key = hashlib.sha1(result.signature.encode() or column.encode()).hexdigest()[:10]
    folder = work / "failures" / case.reader / f"{column}-{key}"
    if folder.exists() and len(list(folder.glob("case-*.pickle"))) >= 3:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"case-{case.index}.pickle").write_bytes(pickle.dumps(case))
    (folder / f"case-{case.index}.txt").write_text(f"{case.kind} {case.action}\n{result.signature}\n\n{result.detail}\n")


def campaign(readers, n: int, workers: int, work: Path, seeds: dict, seed: int = 0, log=print,
             counts: dict[str, int] | None = None) -> dict[str, Tally]:
    """n cases of every reader (`counts` overrides some), on one pool of workers; the readers' cases interleave."""
    counts = counts or {}
    tallies = {r: Tally() for r in readers}
    t0 = time.time()

    def on_result(case: Case, result: Result) -> None:
        t = tallies[case.reader]
        t.counts["cases"] += 1
        t.counts[STATUS_COLUMN[result.status]] += 1
        t.seconds += result.seconds
        t.kinds[case.kind.split("-")[0] + "-" + result.status] += 1
        bad = []
        if result.status in ("traceback", "hang", "crash"):
            bad.append(STATUS_COLUMN[result.status])
        if result.partial:
            t.counts["partial"] += 1
            bad.append("partial")
        if result.modified:
            t.counts["modified"] += 1
            bad.append("modified")
        if result.status == "error" and not result.names_file:
            t.counts["unnamed"] += 1
            bad.append("unnamed")
        for column in bad:
            sig = result.signature or f"{column}: {case.kind} {case.action}"
            entry = t.signatures.setdefault(f"{column} | {sig}", [0, case.kind, column])
            entry[0] += 1
            _save_failure(work, case, Result(result.status, sig, result.detail), column)
        done = t.counts["cases"]
        if done % max(n // 10, 1) == 0 or done == n:
            bad_total = sum(t.counts[c] for c in COLUMNS[3:8])
            log(f"  {case.reader}: {done}/{n} cases, {bad_total} failures ({time.time() - t0:.0f} s since the start)")

    streams = []
    for reader in readers:
        if reader in NEEDS_BLOBS and not seeds.get("blob"):
            log(f"{reader}: skipped, no blob seeds (no MYRIAD toolchain)")
        elif reader == "kernel-elf" and not seeds.get("elf"):
            log(f"{reader}: skipped, no kernel ELF seeds")
        else:
            streams.append(generate(reader, counts.get(reader, n), seeds, seed))

    def interleaved():
        live = list(streams)
        while live:
            for stream in list(live):
                case = next(stream, None)
                if case is None:
                    live.remove(stream)
                else:
                    yield case

    run_cases(interleaved(), workers, work, on_result)
    return tallies


READER_TITLES = {
    "ir-xml": "IR .xml (`load_model`, `IRModel.from_bytes`; `inspect`, `patch` on it)",
    "ir-bin": "IR .bin offsets and sizes (`load_model`, `const_value` of every Const)",
    "onnx": "ONNX (`load_model` of .onnx; `kernelkit inspect`, `patch` on it)",
    "bindings-myriad": "MYRIAD bindings (`myriad_read.load`, `validate`, `select`; `kernelkit validate`)",
    "bindings-gpu": "GPU bindings (`gpu.load`, `validate`, work sizes; `kernelkit validate --gpu`)",
    "kernel-toml": "kernel.toml (`load_spec`; `render` of what loads)",
    "expr": "size expressions (`expr.parse`, `evaluate`, `size_variables`, `numeric_attribute`)",
    "npz": "npz inputs (`emulate._read_inputs`, `verify._load_npz`; `kernelkit emulate`)",
    "nn-archive": "NN Archive packing (`build_archive`, `kernelkit archive`: blob and folder read, archive written)",
    "blob": "the whole blob (`blob_reader.read_blob`, `read_stages`, `custom_stages`, `kernelkit blob info [--json]`)",
    "kernel-elf": "kernel ELF metadata (`check_elf.read_metadata`, `read_note`)",
}


def markdown(tallies: dict[str, Tally]) -> str:
    head = "| reader | " + " | ".join(COLUMNS) + " | time in the readers |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for reader, t in tallies.items():
        if not t.counts["cases"]:
            continue
        rows.append(f"| {reader} | " + " | ".join(str(t.counts[c]) for c in COLUMNS) + f" | {t.seconds:.0f} s |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per reader (default 10000)")
    parser.add_argument("--readers", default=",".join(READERS), help="comma-separated: " + ", ".join(READERS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="work folder (seeds cache, failures, logs)")
    parser.add_argument("--quick-seeds", action="store_true", help="a small seed set (the tests' smoke run)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the counts and signatures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=Path, default=None, help="run one saved case-N.pickle here and print it")
    args = parser.parse_args(argv)
    work = (args.work or Path(tempfile.mkdtemp(prefix="kernelkit-fuzz-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.worker:
        worker_main(work)
        return 0
    if args.replay:
        import faulthandler

        faulthandler.dump_traceback_later(TIME_LIMIT.get("x", DEFAULT_TIME_LIMIT), exit=True)   # where a hang is
        case = pickle.loads(args.replay.read_bytes())
        result = execute(case, Path(tempfile.mkdtemp(prefix="fuzz-replay-", dir=work)))
        print(case.reader, case.kind, case.action, result.status, result.signature, result.partial, result.modified)
        print(result.detail)
        return 0
    os.environ["FUZZ_WORK"] = str(work)
    import resource

    # The generators build big cases on purpose: fail here rather than starve the machine.
    resource.setrlimit(resource.RLIMIT_AS, (2 * WORKER_MEMORY, 2 * WORKER_MEMORY))
    readers = [r.strip() for r in args.readers.split(",") if r.strip()]
    unknown = sorted(set(readers) - set(READERS))
    if unknown:
        parser.error(f"unknown reader(s) {', '.join(unknown)}")
    print(f"work folder {work}")
    seeds = build_seeds(work, full=not args.quick_seeds)
    t0 = time.time()
    tallies = campaign(readers, args.cases, args.workers, work, seeds, args.seed)
    summary = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {platform.machine()} "
        f"{os.cpu_count()} CPUs, {platform.python_version()}", "cases_per_reader": args.cases,
        "workers": args.workers, "seed": args.seed, "seconds": round(time.time() - t0),
        "readers": {r: {"counts": {c: t.counts[c] for c in COLUMNS}, "seconds": round(t.seconds),
                        "signatures": {s: v[0] for s, v in sorted(t.signatures.items(), key=lambda kv: -kv[1][0])},
                        "kinds": dict(t.kinds)} for r, t in tallies.items()},
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(tallies) if args.markdown else json.dumps({r: v["counts"] for r, v in summary["readers"].items()},
                                                             indent=1))
    for reader, t in tallies.items():
        for sig, (count, kind, column) in sorted(t.signatures.items(), key=lambda kv: -kv[1][0])[:25]:
            print(f"  {reader}: {count}x {sig[:200]}")
    failures = sum(t.counts[c] for t in tallies.values() for c in COLUMNS[3:8])
    return 1 if failures else 0


if __name__ == "__main__":
    # run as the module `fuzz_inputs`, so cases pickle the same way here, in the workers and in the tests
    sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
    import fuzz_inputs

    sys.exit(fuzz_inputs.main())
