"""A name read from a user's file becomes a path in one place: kernelkit.core.fsutil.named_file (issue 25).

The walk over the package flags every `Path(...)`, `open(...)`, `os.path.join(...)`, `.joinpath(...)`,
`.with_name(...)` and `a / b` whose argument comes from parsed content (a `.get(...)`/`.pop(...)` call, an XML
element's `.attrib`/`.text`, a binding's `.sources`/`.filename`, a subscript by a string key, or a name bound
from one of these in the same function). Reviewed exceptions are in ALLOWED, each with its reason; an entry
that no longer matches anything fails too, so the list stays true.
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import NAME_MAX, named_file

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kernelkit"
THE_FUNCTION = ("kernelkit/core/fsutil.py", "named_file")

# (file, function) -> why building a path there from parsed content is fine
ALLOWED = {
    ("kernelkit/runners/blob/custom.py", "sources"):
        "the message of a .cl missing beside the binding: the name is shown, never opened (cl_paths opens the "
        "sources through named_file)",
    ("kernelkit/runners/blob/interpreter.py", "_custom_stage"):
        "file names in messages: the paths are the ones named_file returned to KernelSet.cl_paths",
    ("kernelkit/kernel/emulator/cache.py", "read_sources"):
        "the message of a missing source: a name named_file accepted, shown, never opened",
    ("kernelkit/doctor/plugin_check/check_model.py", "prepare_bindings"):
        "the message of a missing source (a name named_file accepted, shown, never opened); the check ELF's "
        "output name is made from <Kernel entry>, cut to 200 characters and to [A-Za-z0-9_.-]",
    ("kernelkit/harness/conformance.py", "_crash_text"):
        "a traceback frame's file name (Python's own), shown, never opened",
    ("kernelkit/kernel/builder/build.py", "build_kernel"):
        "file names the kit's own renderer made (spec name + fixed suffix), not read from a user's file",
    ("kernelkit/compat/blobconverter.py", "_convert"):
        "output_dir: a caller's argument or set_defaults() value (a path the caller chose), not read from a file",
    ("kernelkit/compat/blobconverter.py", "_zoo_dir"):
        "the zoo folder: a caller's argument, set_defaults() value or KERNELKIT_ZOO_DIR, not read from a file",
    ("kernelkit/delivery/device_check.py", "write_device_check"):
        "the device .npz name: the kit's own (source stem + fixed suffix) in the folder the user chose",
}

PARSED_ATTRIBUTES = {"attrib", "text", "tail", "sources", "filename"}
PARSED_CALLS = {"get", "pop", "findtext"}
PATH_CALLS = {"Path", "PurePath", "open"}
PATH_METHODS = {"joinpath", "with_name"}
FOLDER_WORDS = ("dir", "folder", "path", "base", "root", "parent", "stage", "out", "tmp", "work", "home", "cache")


def _is_environment(call: ast.Call) -> bool:
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    return isinstance(receiver, ast.Attribute) and receiver.attr == "environ" or \
        isinstance(receiver, ast.Name) and receiver.id == "environ"


def _parsed(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in PARSED_CALLS \
                and not _is_environment(sub):
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in PARSED_ATTRIBUTES:
            return True
        if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) and isinstance(sub.slice.value, str):
            return True
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def _names(target: ast.AST) -> list[str]:
    """The names a target binds (`a`, `a, b`, `*a`), not those it only reads (`a.x = ...`, `a[k] = ...`)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _names(element)]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    return []


def _tainted_names(function: ast.AST) -> set[str]:
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for node in ast.walk(function):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None \
                    and _parsed(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted.update(name for t in targets for name in _names(t))
            elif isinstance(node, (ast.For, ast.comprehension)) and _parsed(node.iter, tainted):
                tainted.update(_names(node.target))
        if len(tainted) == before:
            return tainted


def _path_built(node: ast.AST, tainted: set[str]) -> bool:
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        args = list(node.args) + [k.value for k in node.keywords]
        if name in PATH_CALLS or (isinstance(func, ast.Attribute) and (
                func.attr in PATH_METHODS or func.attr == "join" and isinstance(func.value, ast.Attribute)
                and func.value.attr == "path")):
            return any(_parsed(a, tainted) for a in args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _path_like(node.left) and _parsed(node.right, tainted)
    return False


def _path_like(node: ast.AST) -> bool:
    """The left side of a `/` that joins paths (numbers divide too): a Path(...) or a folder's name."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _path_like(node.left)
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in {"Path", "PurePath"} or _path_like(node.func)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return any(word in name.lower() for word in FOLDER_WORDS)


def unchecked_paths() -> dict[tuple[str, str], list[int]]:
    """(file, function) -> lines where a path is built from parsed content outside named_file."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            key = (relative, function.name)
            if key == THE_FUNCTION:
                continue
            tainted = _tainted_names(function)
            inner = {n for f in ast.walk(function) if f is not function
                     and isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
            for node in ast.walk(function):
                if node not in inner and _path_built(node, tainted):
                    found.setdefault(key, []).append(node.lineno)
    return found


def test_no_path_is_built_from_parsed_content_outside_named_file():
    found = unchecked_paths()
    unexplained = {f"{file}:{lines[0]} in {function}()": len(lines)
                   for (file, function), lines in found.items() if (file, function) not in ALLOWED}
    assert not unexplained, ("turn these names into paths with kernelkit.core.fsutil.named_file "
                             "(or add a reviewed reason to ALLOWED)", unexplained)
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, ("ALLOWED entries that no longer build a path from parsed content", stale)


def test_the_walk_sees_a_path_built_by_hand(tmp_path):
    """The check itself: each form it claims to flag is flagged."""
    sources = {
        "element": "def f(base, element):\n    return (base / element.get('filename')).is_file()\n",
        "dict": "def f(base, data):\n    return open(base + data['module'])\n",
        "through a name": "def f(base, layer):\n    for name in layer.sources:\n        p = base / name\n",
        "os.path.join": "import os\ndef f(base, spec):\n    return os.path.join(base, spec.text)\n",
    }
    for what, source in sources.items():
        function = ast.parse(source).body[-1]
        tainted = _tainted_names(function)
        assert any(_path_built(n, tainted) for n in ast.walk(function)), what
    clean = ast.parse("def f(base, args):\n    return Path(args.out) / 'model.xml'\n").body[0]
    assert not any(_path_built(n, _tainted_names(clean)) for n in ast.walk(clean))


# ------------------------------------------------------------------------------- the function, on real files

def checked(folder: Path, name: str, **kwargs):
    return named_file(folder, name, source=folder / "holder.xml", where="<Source filename>", line=7, **kwargs)


def refused(folder: Path, name: str, match: str, **kwargs) -> KernelkitError:
    with pytest.raises(KernelkitError, match=match) as info:
        checked(folder, name, **kwargs)
    error = info.value
    assert error.path == str(folder / "holder.xml") and error.line == 7 and error.where == "<Source filename>"
    assert error.hint
    return error


def test_a_file_inside_the_folder_is_its_path(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "k.bin").write_text("")
    (tmp_path / "sub" / "k.cl").write_text("")
    assert checked(tmp_path, "sub/k.bin") == tmp_path / "sub" / "k.bin"
    assert checked(tmp_path, "sub/k.bin", suffix=".cl") == tmp_path / "sub" / "k.cl"
    assert checked(tmp_path, "missing.cl", missing_ok=True) is None
    refused(tmp_path, "missing.cl", "not found")


def test_names_no_file_system_holds(tmp_path):
    refused(tmp_path, "k" * (NAME_MAX + 1) + ".cl", "longer than a file system allows", missing_ok=True)
    refused(tmp_path, "/".join(["d" * 200] * 25), "longer than a file system allows", missing_ok=True)
    refused(tmp_path, "k\0.cl", "NUL byte", missing_ok=True)
    refused(tmp_path, "", "empty name", missing_ok=True)
    refused(tmp_path, "sub/..", "a folder's", inside=False)
    assert checked(tmp_path, "k" * NAME_MAX, missing_ok=True) is None       # the longest name is a name


def test_names_out_of_the_folder(tmp_path):
    folder = tmp_path / "kernel"
    folder.mkdir()
    (tmp_path / "secret.py").write_text("")
    refused(folder, "../secret.py", "leads out of the folder")
    refused(folder, str(tmp_path / "secret.py"), "leads out of the folder")
    (folder / "link.py").symlink_to(tmp_path / "secret.py")
    refused(folder, "link.py", "symbolic link out of")
    # where the format allows names that leave the folder (bindings, compile.conf), they resolve as written
    assert checked(folder, "../secret.py", inside=False) == folder / "../secret.py"
    assert checked(folder, "link.py", inside=False) == folder / "link.py"
    (folder / "inner.py").write_text("")
    (folder / "alias.py").symlink_to("inner.py")
    assert checked(folder, "alias.py") == folder / "alias.py"       # a link that stays inside is fine


def test_what_is_not_a_regular_file(tmp_path):
    (tmp_path / "folder.cl").mkdir()
    os.mkfifo(tmp_path / "fifo.cl")
    refused(tmp_path, "folder.cl", "a folder, not a file")
    refused(tmp_path, "fifo.cl", "a FIFO, not a file", missing_ok=True)
    refused(Path("/dev"), "null", "a device, not a file", inside=False)
    (tmp_path / "dangling.cl").symlink_to(tmp_path / "nowhere")
    refused(tmp_path, "dangling.cl", "a link to nothing")
    assert checked(tmp_path, "dangling.cl", missing_ok=True) is None
    assert stat.S_ISFIFO((tmp_path / "fifo.cl").stat().st_mode)    # looked at, never opened (it would block)


# ------------------------------------------------------------------------------- the fuzzer's case

GPU_BINDING = """<CustomLayer name="Twice" type="SimpleGPU" version="1">
  <Kernel entry="twice">
    <Source filename="{source}"/>
  </Kernel>
  <Buffers>
    <Tensor arg-index="0" type="input" port-index="0" format="BFYX"/>
    <Tensor arg-index="1" type="output" port-index="0" format="BFYX"/>
  </Buffers>
  <CompilerOptions options="-cl-mad-enable"/>
  <WorkSizes global="B*F*Y*X,1,1"/>
</CustomLayer>
"""


def test_validate_gpu_binding_naming_an_over_long_source_is_exit_2(tmp_path):
    """benchmarks/fuzz_inputs.py --seed 77: `kernelkit validate --gpu` died with OSError Errno 36 at is_file()."""
    binding = tmp_path / "twice.gpu.xml"
    binding.write_text(GPU_BINDING.format(source="s" * 297 + ".cl"))
    proc = subprocess.run([sys.executable, "-m", "kernelkit", "validate", "--gpu", str(binding)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(binding) in proc.stderr and "<Source filename>" in proc.stderr
    assert "longer than a file system allows" in proc.stderr


def test_validate_gpu_binding_with_its_source_cross_checks_it(tmp_path):
    binding = tmp_path / "twice.gpu.xml"
    binding.write_text(GPU_BINDING.format(source="twice.cl"))
    (tmp_path / "twice.cl").write_text("__kernel void twice(const __global float* in, __global float* out)\n"
                                       "{ out[get_global_id(0)] = 2.0f * in[get_global_id(0)]; }\n")
    proc = subprocess.run([sys.executable, "-m", "kernelkit", "validate", "--gpu", str(binding)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not cross-checked" not in proc.stderr
