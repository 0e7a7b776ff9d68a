"""kernelkit.compat.blobconverter (the drop-in client) and `kernelkit serve` (its HTTP protocol), checked with
real blobs read by depthai, the patched IR run on OpenVINO CPU against a numpy-preprocessed reference, and the
real blobconverter 1.4.3 client from PyPI talking to the server on loopback."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from myriad_models import read_blob_with_depthai, require_toolchain

MEAN, SCALE = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]


def conv_onnx(folder: Path, seed: int = 0, name: str = "model", size: int = 8, convs: int = 1,
              channels: int = 4) -> Path:
    """x [1,3,size,size] -> `convs` 3x3 convolutions -> y; the weights depend on `seed`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev, cin = [], [], "x", 3
    for i in range(convs):
        inits.append(numpy_helper.from_array(rng.standard_normal((channels, cin, 3, 3)).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], ["y" if i == convs - 1 else f"c{i}"],
                                      pads=[1, 1, 1, 1], name=f"conv{i}"))
        prev, cin = f"c{i}", channels
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, size, size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def run_cpu(model: Path, feed: np.ndarray) -> np.ndarray:
    import openvino as ov

    compiled = ov.Core().compile_model(str(model), "CPU")
    return next(iter(compiled([feed]).values()))


@pytest.fixture
def blobconverter():
    import kernelkit.compat.blobconverter as module

    saved = dict(module._defaults)
    yield module
    module._defaults.clear()
    module._defaults.update(saved)


# ------------------------------------------------------------------------------------ parameter mapping

def test_optimizer_and_compile_params_map_onto_patch_and_compile_options():
    from kernelkit.compat.conversion import make_plan

    plan = make_plan(version="2021.4", shaves=6, data_type="FP16",
                     optimizer_params=["--mean_values=data[1,2,3]", "--scale_values data[4,5,6]",
                                       "--reverse_input_channels --layout=data(nchw)", "--input=data",
                                       "--input_shape=[1,3,64,64]", "--output=a,b", "--data_type=half",
                                       "--input_model=$dl_dir/FP16/m.onnx"],
                     compile_params=["-ip U8 -op FP32", "-il NCHW"])
    assert (plan.mean, plan.scale, plan.reverse_channels) == ({"data": [1, 2, 3]}, {"data": [4, 5, 6]}, True)
    assert (plan.layouts, plan.inputs, plan.outputs) == ({"data": "NCHW"}, ["data"], ["a", "b"])
    assert plan.input_shapes == {"#0": [1, 3, 64, 64]} and plan.data_type == "FP16" and plan.u8_input
    assert not plan.fp16_output                     # -op FP32: the plugin's default
    assert make_plan(version="2021.4", shaves=4, data_type="FP16", compile_params=["-ip U8", "-op fp16"]).fp16_output
    assert plan.notes == []                         # 2021.4 is what compiles: nothing to say
    assert make_plan(version="2022.1", shaves=4, data_type="FP16").notes  # said so


@pytest.mark.parametrize("kind, params, named", [
    ("optimizer_params", ["--compress_to_fp16"], "--compress_to_fp16"),
    ("optimizer_params", ["--mean_values=[1,x,3]"], "--mean_values"),
    ("optimizer_params", ["--layout=nchw->nhwc"], "--layout"),
    ("optimizer_params", ["--input_shape=[1,-1,3]"], "--input_shape"),
    ("optimizer_params", ["reverse"], "'reverse'"),
    ("compile_params", ["-c myriad.conf"], "'-c'"),
    ("compile_params", ["-ip I8"], "-ip I8"),
    ("compile_params", ["-ip"], "-ip needs a value"),
    ("compile_params", ["-il NHWC"], "-il NHWC"),
    ("compile_params", ["-op U8"], "-op U8"),
    ("compile_params", ["-op"], "-op needs a value"),
])
def test_unknown_or_unsupported_params_are_a_clear_error_naming_the_param(kind, params, named):
    from kernelkit.compat.conversion import make_plan

    with pytest.raises(KernelkitError, match=named.replace("[", r"\[")) as info:
        make_plan(version="2021.4", shaves=4, data_type="FP16", **{kind: params})
    assert kind in str(info.value)


def test_an_nhwc_layout_reaches_the_preprocessing(tmp_path):
    """MO's --layout goes to the preprocess pass, so a channel flip acts on the layout's channel axis."""
    from kernelkit.compat.conversion import make_plan, preprocessing_for

    model = conv_onnx(tmp_path)
    plan = make_plan(version="2021.4", shaves=4, data_type="FP16",
                     optimizer_params=["--layout=nhwc", "--reverse_input_channels"])
    assert preprocessing_for(plan, model).layouts == {"": "NHWC"}
    nchw = make_plan(version="2021.4", shaves=4, data_type="FP16",
                     optimizer_params=["--layout=x(nchw)", "--reverse_input_channels"])
    assert preprocessing_for(nchw, model).reverse_channels and preprocessing_for(nchw, model).inputs == ["x"]


def test_rvc3_and_unknown_versions_are_refused():
    from kernelkit.compat.conversion import make_plan

    for version, says in (("2022.3_RVC3", "RVC3"), ("2030.1", "unknown OpenVINO version")):
        with pytest.raises(KernelkitError, match=says):
            make_plan(version=version, shaves=4, data_type="FP16")


def test_the_client_yaml_subset_reads_what_pyyaml_writes():
    yaml = pytest.importorskip("yaml")       # PyYAML comes with the blobconverter client, not with kernelkit
    from kernelkit.compat.miniyaml import loads

    config = {"files": [{"name": "FP16/m.onnx", "source": {"$type": "http", "url": "$REQUEST/m.onnx"}}],
              "framework": "onnx", "task_type": "detection",
              "model_optimizer_args": ["--mean_values=[127.5,127.5,127.5]", "--input=a b", "yes", "1.5", "",
                                       "--x='q'", "#not a comment", "a: b"]}
    assert loads(yaml.dump(config, default_flow_style=False)) == config
    for bad in ("a: &x 1", "a:\n\tb: 1", "a: 1\na: 2", "a: [1, 2", "- a\nb: 1"):
        with pytest.raises(KernelkitError, match="YAML"):
            loads(bad)


# ------------------------------------------------------------------------------------ the drop-in client

@pytest.mark.toolchain
def test_from_onnx_unchanged_script_makes_a_real_blob_with_the_preprocessing_applied(tmp_path, blobconverter):
    """A blobconverter script with only its import changed: the blob loads in depthai with the model's names
    and shapes and a U8 input; the patched IR, run on OpenVINO CPU on a U8 image, matches the original model
    fed the image preprocessed by numpy (channels reversed, then (x - mean) / scale per channel)."""
    require_toolchain()
    model = conv_onnx(tmp_path / "m")
    params = [f"--mean_values=[{','.join(map(str, MEAN))}]", f"--scale_values=[{','.join(map(str, SCALE))}]",
              "--reverse_input_channels"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blob_path = blobconverter.from_onnx(model=str(model), optimizer_params=params, shaves=6,
                                            version=blobconverter.Versions.v2021_4, output_dir=tmp_path / "out")
    assert not [w for w in caught if issubclass(w.category, blobconverter.VersionWarning)]
    assert Path(blob_path) == tmp_path / "out" / "model_openvino_2021.4_6shave.blob"
    import depthai as dai

    blob = read_blob_with_depthai(blob_path)
    assert blob.version == dai.OpenVINO.Version.VERSION_2021_4 and blob.numShaves == 6
    assert list(blob.networkInputs) == ["x"] and list(blob.networkOutputs) == ["y"]
    assert blob.networkInputs["x"].dims == [8, 8, 3, 1] and blob.networkOutputs["y"].dims == [8, 8, 4, 1]
    assert blob.networkInputs["x"].dataType == dai.TensorInfo.DataType.U8F         # -ip U8 (the default)
    assert blob.networkOutputs["y"].dataType == dai.TensorInfo.DataType.FP32       # what `-op FP32` accepts

    # The same plan the call made, patched and run on OpenVINO CPU.
    from kernelkit.compat.conversion import Plan, patch_for

    planned = blobconverter.from_onnx(model=str(model), optimizer_params=params, shaves=6, version="2021.4",
                                      output_dir=tmp_path / "out", dry=True)["plan"]
    patch_for(model, Plan(**planned), tmp_path / "patched")
    image = np.random.default_rng(1).integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    mean, scale = np.reshape(MEAN, (1, 3, 1, 1)), np.reshape(SCALE, (1, 3, 1, 1))
    reference_in = (image[:, ::-1].astype(np.float32) - mean) / scale
    expected = run_cpu(model, reference_in.astype(np.float32))
    got = run_cpu(tmp_path / "patched" / "model.xml", image.astype(np.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    wrong = run_cpu(model, ((image.astype(np.float32) - 127.5) / 255).astype(np.float32))
    assert not np.allclose(got, wrong, atol=1e-2)


@pytest.mark.toolchain
def test_compile_params_ip_u8_op_fp16_give_u8_in_fp16_out_with_the_fp32_blobs_values(tmp_path, blobconverter):
    """The pair real scripts pass: DepthAI reads U8 in and FP16 out; on the blob interpreter the FP16 outputs
    equal the default (FP32-output) blob's, which computes in fp16 and widens at the end."""
    require_toolchain()
    import depthai as dai

    from kernelkit.runners.blob.runner import BlobRunner

    model = conv_onnx(tmp_path / "m", convs=2)
    narrow = blobconverter.from_onnx(str(model), compile_params=["-ip U8", "-op FP16"], version="2021.4",
                                     shaves=6, output_dir=tmp_path / "out")
    blob = read_blob_with_depthai(narrow)
    assert blob.networkInputs["x"].dataType == dai.TensorInfo.DataType.U8F
    assert blob.networkOutputs["y"].dataType == dai.TensorInfo.DataType.FP16
    wide = blobconverter.from_onnx(str(model), compile_params=["-ip U8"], version="2021.4", shaves=6,
                                   output_dir=tmp_path / "out")
    assert read_blob_with_depthai(wide).networkOutputs["y"].dataType == dai.TensorInfo.DataType.FP32
    image = np.random.default_rng(2).integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    y16 = BlobRunner(narrow).run({"x": image}).outputs["y"]
    y32 = BlobRunner(wide).run({"x": image}).outputs["y"]
    assert float(np.abs(y32).max()) > 1                     # a real signal, not zeros
    np.testing.assert_array_equal(y16, y32)
    assert len(list((tmp_path / "out" / blobconverter.CACHE_FOLDER).glob("*.blob"))) == 2   # -op is in the key


@pytest.mark.toolchain
def test_input_shape_and_output_reach_the_blob(tmp_path, blobconverter):
    require_toolchain()
    model = conv_onnx(tmp_path, convs=2)
    path = blobconverter.from_onnx(str(model), optimizer_params=["--input_shape=[1,3,16,16]", "--output=c0"],
                                   compile_params=[], version="2021.4", output_dir=tmp_path / "out")
    blob = read_blob_with_depthai(path)
    assert blob.networkInputs["x"].dims == [16, 16, 3, 1] and list(blob.networkOutputs) == ["c0"]
    assert blob.networkOutputs["c0"].dims == [16, 16, 4, 1]


@pytest.mark.toolchain
def test_the_cache_is_keyed_by_content_not_by_name(tmp_path, blobconverter):
    require_toolchain()
    blobconverter.set_defaults(output_dir=tmp_path / "out", version="2021.4", shaves=3)
    first_model = conv_onnx(tmp_path / "a", seed=0)
    second_model = conv_onnx(tmp_path / "b", seed=1)          # same file name, other weights
    first = Path(blobconverter.from_onnx(str(first_model))).read_bytes()
    second_path = Path(blobconverter.from_onnx(str(second_model)))
    second = second_path.read_bytes()
    assert second_path == tmp_path / "out" / "model_openvino_2021.4_3shave.blob"
    assert first != second                                    # the real client returned the stale blob here
    entries = sorted((tmp_path / "out" / blobconverter.CACHE_FOLDER).glob("*.blob"))
    assert len(entries) == 2
    again = Path(blobconverter.from_onnx(str(first_model))).read_bytes()
    assert again == first and len(list((tmp_path / "out" / blobconverter.CACHE_FOLDER).glob("*.blob"))) == 2
    # Another parameter is another blob.
    other = Path(blobconverter.from_onnx(str(first_model), optimizer_params=[])).read_bytes()
    assert other != first


@pytest.mark.toolchain
def test_an_unsupported_version_is_compiled_by_2021_4_stamped_and_warned(tmp_path, blobconverter):
    require_toolchain()
    import depthai as dai

    model = conv_onnx(tmp_path / "m")
    for version in ("2022.1", "2022.3"):
        with pytest.warns(blobconverter.VersionWarning, match=f"OpenVINO {version} was asked for.*2021.4"):
            path = blobconverter.from_onnx(str(model), version=version, output_dir=tmp_path / "out")
        assert Path(path).name == f"model_openvino_{version}_4shave.blob"
        assert read_blob_with_depthai(path).version == dai.OpenVINO.Version.VERSION_2022_1


@pytest.mark.toolchain
def test_from_openvino_patches_an_unsupported_layer_on_the_way(tmp_path, blobconverter):
    """CumSum, which the 2021.4 MYRIAD plugin refuses, is patched (kernelkit patch) and the model compiles."""
    require_toolchain()
    from kernelkit.myriad.compile import CompileFailed, compile_model
    from myriad_models import cumsum

    xml = cumsum(tmp_path)
    with pytest.raises(CompileFailed, match='unsupported layer type "CumSum"'):
        compile_model(xml, tmp_path / "direct.blob")
    path = blobconverter.from_openvino(xml=str(xml), bin=str(xml.with_suffix(".bin")), version="2021.4",
                                       output_dir=tmp_path / "out")
    blob = read_blob_with_depthai(path)
    assert list(blob.networkOutputs) == ["running_total"] and blob.networkInputs["x"].dims == [8, 8, 3, 1]


@pytest.mark.toolchain
def test_from_zoo_reads_a_local_zoo_folder(tmp_path, blobconverter):
    require_toolchain()
    conv_onnx(tmp_path / "zoo" / "tiny-conv", name="tiny")
    (tmp_path / "zoo" / "tiny-conv" / "model.yml").write_text(
        "framework: onnx\nmodel_optimizer_args:\n  - --input_model=$dl_dir/tiny.onnx\n  - --scale_values=[255]\n")
    assert blobconverter.zoo_list(zoo_dir=tmp_path / "zoo") == ["tiny-conv"]
    path = blobconverter.from_zoo("tiny-conv", zoo_dir=tmp_path / "zoo", version="2021.4", output_dir=tmp_path / "o")
    assert Path(path).name == "tiny-conv_openvino_2021.4_4shave.blob"
    assert list(read_blob_with_depthai(path).networkInputs) == ["x"]
    with pytest.raises(KernelkitError, match="(?s)no model 'nope' in the local zoo.*models: tiny-conv"):
        blobconverter.from_zoo("nope", zoo_dir=tmp_path / "zoo")
    for hostile in ("../zoo", "x" * 5000, "a\x00b", ".hidden"):      # the fuzzer's 5000-character name
        with pytest.raises(KernelkitError, match="not a plain file name"):
            blobconverter.from_zoo(hostile, zoo_dir=tmp_path / "zoo")


def test_client_refusals_name_what_to_do(tmp_path, blobconverter):
    model = conv_onnx(tmp_path)
    with pytest.raises(KernelkitError, match="URL: kernelkit converts offline"):
        blobconverter.from_onnx("https://example.com/model.onnx")
    with pytest.raises(KernelkitError, match="download_ir"):
        blobconverter.from_onnx(str(model), download_ir=True)
    with pytest.raises(KernelkitError, match="Caffe"):
        blobconverter.from_caffe("net.prototxt", "net.caffemodel")
    with pytest.raises(KernelkitError, match="--bogus"):
        blobconverter.from_onnx(str(model), optimizer_params=["--bogus"], output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ kernelkit serve

@pytest.fixture
def server(tmp_path):
    from kernelkit.compat.server import make_server

    (tmp_path / "zoo" / "tiny-conv").mkdir(parents=True)
    srv = make_server("127.0.0.1", 0, cache_dir=tmp_path / "cache", zoo_dir=tmp_path / "zoo", jobs=1)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


S3_HOST = "blobconverter.s3.amazonaws.com"


class _S3StandIn(socketserver.ThreadingTCPServer):
    """An HTTPS proxy that answers the client's one S3 lookup as the retired bucket does (404) and refuses every
    other destination: the client's own HTTP stack does the CONNECT and the TLS handshake."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cert: Path, key: Path):
        self.cert, self.key, self.seen = cert, key, []
        super().__init__(("127.0.0.1", 0), _S3Handler)


class _S3Handler(socketserver.StreamRequestHandler):
    def _headers(self, stream) -> bytes:
        first = stream.readline(4096)
        while stream.readline(4096) not in (b"\r\n", b"\n", b""):
            pass
        return first

    def handle(self):
        request = self._headers(self.rfile).split()
        if request[:2] != [b"CONNECT", f"{S3_HOST}:443".encode()]:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server.cert, self.server.key)
        with context.wrap_socket(self.connection, server_side=True) as tls:
            self.server.seen.append(self._headers(tls.makefile("rb")).decode("latin-1").strip())
            tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def real_client(tmp_path, monkeypatch):
    """The real blobconverter 1.4.3 client, unmodified. Before posting it always GETs
    https://blobconverter.s3.amazonaws.com/<sha256>.blob and posts only after a 404. This machine is offline,
    so HTTPS_PROXY points at a loopback proxy that answers that one lookup 404 over TLS, with a certificate for
    the bucket's name that REQUESTS_CA_BUNDLE makes the client trust; everything else the client does is its
    own code over real HTTP."""
    client = pytest.importorskip("blobconverter")
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make the S3 stand-in's certificate")
    cert, key = tmp_path / "s3.pem", tmp_path / "s3.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={S3_HOST}", "-addext", f"subjectAltName=DNS:{S3_HOST}"],
                   check=True, capture_output=True)
    proxy = _S3StandIn(cert, key)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    # The client keeps its request-hash index under its default output_dir whatever output_dir a call names.
    monkeypatch.setitem(getattr(client, "__defaults"), "output_dir", tmp_path / "client-home")
    client.s3_stand_in = proxy
    yield client
    proxy.shutdown()
    proxy.server_close()


@pytest.mark.toolchain
def test_the_real_client_compiles_through_kernelkit_serve(tmp_path, server, real_client):
    require_toolchain()
    import depthai as dai

    model = conv_onnx(tmp_path / "m")
    path = real_client.from_onnx(str(model), url=_url(server), shaves=5, version="2021.4",
                                 output_dir=tmp_path / "client", use_cache=False)
    blob = read_blob_with_depthai(path)
    assert (blob.numShaves, blob.version) == (5, dai.OpenVINO.Version.VERSION_2021_4)
    assert list(blob.networkInputs) == ["x"] and blob.networkInputs["x"].dataType == dai.TensorInfo.DataType.U8F
    assert real_client.zoo_list(url=_url(server)) == ["tiny-conv"]
    looked_up = real_client.s3_stand_in.seen
    assert len(looked_up) == 1 and re.fullmatch(r"GET /[0-9a-f]{64}\.blob HTTP/1\.1", looked_up[0]), looked_up
    assert len(list((tmp_path / "cache").glob("*.blob"))) == 1          # the server's content-keyed cache


@pytest.mark.toolchain
def test_the_real_client_gets_fp16_outputs_from_serve_with_op_fp16(tmp_path, server, real_client):
    require_toolchain()
    import depthai as dai

    model = conv_onnx(tmp_path / "m")
    path = real_client.from_onnx(str(model), url=_url(server), version="2021.4", compile_params=["-ip U8", "-op FP16"],
                                 output_dir=tmp_path / "client", use_cache=False)
    blob = read_blob_with_depthai(path)
    assert blob.networkInputs["x"].dataType == dai.TensorInfo.DataType.U8F
    assert blob.networkOutputs["y"].dataType == dai.TensorInfo.DataType.FP16


@pytest.mark.toolchain
def test_the_real_client_sends_an_ir_whose_cumsum_serve_patches(tmp_path, server, real_client):
    require_toolchain()
    from myriad_models import cumsum

    xml = cumsum(tmp_path)
    path = real_client.from_openvino(str(xml), str(xml.with_suffix(".bin")), url=_url(server), version="2021.4",
                                     output_dir=tmp_path / "client")
    assert Path(path).name == "cumsum_openvino_2021.4_4shave.blob"
    assert list(read_blob_with_depthai(path).networkOutputs) == ["running_total"]


@pytest.mark.toolchain
def test_an_unsupported_version_through_serve_is_stamped_and_said(tmp_path, server):
    require_toolchain()
    model = conv_onnx(tmp_path / "m")
    status, headers, body = _post(server, {"name": "model", "myriad_shaves": "4", "myriad_params_advanced": "-ip U8",
                                           "data_type": "FP16", "download_ir": "False", "zoo_type": "intel"},
                                  {"config": _config("model.onnx"), "model.onnx": model.read_bytes()},
                                  query="version=2022.3&no_cache=True")
    assert status == 200, body[:500]
    assert "OpenVINO 2022.3 was asked for" in headers["Warning"]
    import depthai as dai

    assert dai.OpenVINO.Blob(body).version == dai.OpenVINO.Version.VERSION_2022_1


def test_a_failure_is_400_json_the_real_client_turns_into_its_usual_error(tmp_path, server, real_client, capsys):
    import requests

    model = conv_onnx(tmp_path / "m")
    with pytest.raises(requests.HTTPError, match="400 Client Error"):
        real_client.from_onnx(str(model), url=_url(server), optimizer_params=["--compress_to_fp16"],
                              output_dir=tmp_path / "client")
    printed = capsys.readouterr().out
    reply = json.loads(printed[printed.index("{"):printed.rindex("}") + 1])
    assert set(reply) == {"exit_code", "message", "stderr", "stdout"}
    assert reply["exit_code"] == 2 and "--compress_to_fp16" in reply["message"]
    assert not list((tmp_path / "client").glob("*.blob"))


def _config(model_name: str, args=("--mean_values=[127.5,127.5,127.5]", "--scale_values=[255,255,255]")) -> bytes:
    lines = ["files:", f"- name: FP16/{model_name}", "  source:", "    $type: http",
             f"    url: $REQUEST/{model_name}", "framework: onnx", "model_optimizer_args:"]
    lines += [f"- {a}" for a in args] + [f"- --input_model=$dl_dir/FP16/{model_name}", "task_type: detection"]
    return ("\n".join(lines) + "\n").encode()


def _multipart(fields: dict, files: dict, boundary: str = "kkboundary") -> tuple[str, bytes]:
    body = b""
    for name, value in fields.items():
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n').encode() + \
            value.encode() + b"\r\n"
    for name, data in files.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'.encode(
            "utf-8", "surrogateescape") + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def _post(srv, fields, files, query="version=2021.4&no_cache=False", headers=None, body=None):
    ctype, encoded = _multipart(fields, files)
    connection = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=120)
    connection.request("POST", f"/compile?{query}", body=encoded if body is None else body,
                       headers={"Content-Type": ctype, **(headers or {})})
    response = connection.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return result


def test_an_oversized_upload_is_refused_before_it_is_read(tmp_path, server, monkeypatch):
    monkeypatch.setenv("KERNELKIT_MAX_UPLOAD_BYTES", "4096")
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    connection.putrequest("POST", "/compile?version=2021.4")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(10 ** 12))
    connection.endheaders()
    response = connection.getresponse()                 # no body sent: the answer comes from the headers
    reply = json.loads(response.read())
    assert response.status == 413 and "above the limit of 4,096" in reply["message"]
    assert "KERNELKIT_MAX_UPLOAD_BYTES" in reply["message"]
    connection.close()


@pytest.mark.parametrize("name", ["../x.onnx", "/etc/x.onnx", "a\x00b.onnx", "x" * 300 + ".onnx", ".hidden.onnx",
                                  "sub/x.onnx", "a..onnx"])
def test_hostile_upload_names_are_refused_and_never_become_paths(tmp_path, server, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = conv_onnx(tmp_path / "m")
    before = sorted(p for p in tmp_path.rglob("*"))
    status, _, body = _post(server, {"name": "x", "myriad_shaves": "4"},
                            {"config": _config("x.onnx"), name: model.read_bytes()})
    reply = json.loads(body)
    assert status == 400 and "not a plain file name" in reply["message"], reply
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/etc/x.onnx").exists()


def test_malformed_requests_are_400_json(server):
    cases = [("multipart/form-data; boundary=b", b"garbage"),
             ("application/json", b"{}"),
             ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"config\"\r\n\r\nx"),
             ("multipart/form-data; boundary=b",
              b"--b\r\nContent-Disposition: form-data; name=\"evil\"\r\n\r\nx\r\n--b--\r\n")]
    for ctype, body in cases:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        connection.request("POST", "/compile?version=2021.4", body=body, headers={"Content-Type": ctype})
        response = connection.getresponse()
        reply = json.loads(response.read())
        assert response.status == 400 and reply["exit_code"] == 2 and reply["message"], (ctype, body)
        connection.close()


def test_multipart_parser_keeps_bytes_and_reads_rfc2231_names():
    from kernelkit.compat.server import parse_multipart

    data = bytes(range(256)) * 4 + b"\r\n--notboundary\r\n"
    ctype, body = _multipart({"name": "m"}, {"config": b"framework: onnx\n", "m.onnx": data})
    upload = parse_multipart(ctype, body)
    assert upload.files == {"m.onnx": data} and upload.fields == {"name": "m"}
    encoded = body.replace(b'filename="m.onnx"', b"filename*=utf-8''m.onnx")
    assert parse_multipart(ctype, encoded).files == {"m.onnx": data}


@pytest.mark.toolchain
def test_a_compile_killed_at_its_time_limit_leaves_no_blob(tmp_path, server, monkeypatch):
    require_toolchain()
    monkeypatch.setenv("KERNELKIT_SERVE_TIMEOUT", "1")
    model = conv_onnx(tmp_path / "m", name="slow", size=256, convs=10, channels=64)  # ~6 s of compiling
    status, _, body = _post(server, {"name": "slow", "myriad_shaves": "4", "myriad_params_advanced": ""},
                            {"config": _config("slow.onnx", ()), "slow.onnx": model.read_bytes()})
    reply = json.loads(body)
    assert status == 400 and reply["exit_code"] == 1 and "did not finish within 1 s" in reply["message"]
    cache = tmp_path / "cache"
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == []        # no blob, no staging leftover
    assert not list(Path(tempfile.gettempdir()).glob("kernelkit-serve-*/*.onnx"))


@pytest.mark.toolchain
def test_concurrent_requests_queue_on_the_bounded_pool(tmp_path, server, monkeypatch):
    """jobs=1: two requests at once both compile (one waits); with the queue full a third is told 503."""
    require_toolchain()
    models = [conv_onnx(tmp_path / f"m{i}", seed=i) for i in range(2)]
    results = [None, None]

    def post(i):
        results[i] = _post(server, {"name": "model", "myriad_shaves": "4", "myriad_params_advanced": "-ip U8"},
                           {"config": _config("model.onnx"), "model.onnx": models[i].read_bytes()})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [r[0] for r in results] == [200, 200] and results[0][2] != results[1][2]
    for r in results:
        read_blob_with_depthai_bytes(r[2])
    # Fill the pool and the queue (KERNELKIT_SERVE_QUEUE=1) and ask once more.
    monkeypatch.setenv("KERNELKIT_SERVE_QUEUE", "1")
    service = server.service
    # a handler leaves the queue after it has sent its answer: wait for both to have left before filling it
    deadline = time.monotonic() + 60
    while service.waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    with service.lock:
        service.waiting = 2
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        connection.putrequest("POST", "/compile?version=2021.4")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(1 << 20))
        connection.endheaders()                 # no body sent: refused before the upload is read
        response = connection.getresponse()
        status, body = response.status, response.read()
        connection.close()
    finally:
        with service.lock:
            service.waiting = 0
    assert status == 503 and "queue is full" in json.loads(body)["message"]


def read_blob_with_depthai_bytes(data: bytes):
    import depthai as dai

    return dai.OpenVINO.Blob(data)


def test_serve_cli_refuses_a_taken_port(tmp_path, server, capsys):
    from kernelkit.cli import main

    assert main(["serve", "--port", str(server.server_address[1]), "--cache", str(tmp_path)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_zoo_models_and_unknown_paths(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    connection.request("GET", "/zoo_models?version=2022.1&zoo_type=intel")
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read()) == {"available": ["tiny-conv"]}
    connection.request("GET", "/0123abcd.blob")
    response = connection.getresponse()
    assert response.status == 404 and json.loads(response.read())["exit_code"] == 2
    connection.close()


def test_kernelkit_serve_listens_on_loopback_and_stops_cleanly_on_interrupt(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # Ctrl-C in a terminal: SIGINT at its default in the server, even when this suite was started in the
    # background of a script, whose children inherit SIGINT ignored (then no Ctrl-C could ever reach it)
    proc = subprocess.Popen([sys.executable, "-m", "kernelkit", "serve", "--port", "0", "--cache", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        assert line.startswith("kernelkit serve: blobconverter protocol on http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/zoo_models")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"available": []}
        connection.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr


def test_the_unpatched_real_client_dry_run_gets_the_plan_from_kernelkit_serve(tmp_path, server):
    """With dry=True the 1.4.3 client skips its S3 lookup: here it runs with nothing replaced."""
    client = pytest.importorskip("blobconverter")
    model = conv_onnx(tmp_path / "m")
    plan = client.from_onnx(str(model), url=_url(server), dry=True, shaves=7,
                            optimizer_params=["--reverse_input_channels", "--scale_values=[255,255,255]"])
    assert plan["framework"] == "onnx"
    assert plan["plan"]["shaves"] == 7 and plan["plan"]["reverse_channels"] is True and plan["plan"]["u8_input"]
    assert plan["plan"]["scale"] == {"": [255.0, 255.0, 255.0]} and plan["plan"]["mean"] == {}
    assert "OpenVINO 2022.1 was asked for" in plan["notes"][0]
