"""Build a kernel folder: render, check (clang host check, SHAVE lint, binding validation and cross-check),
then write `<name>.cl`, `<name>.xml` (MYRIAD), `<name>.gpu.xml` and, with clc, `<name>.bin` into OUT.

Outputs are written all together or not at all. A content hash over everything that shapes them (spec folder,
templates, toolchain declarations, kit sources, tool identities) is stamped in the .cl's first line and keys a
cache under `paths.cache_dir("build")`: an unchanged rebuild does no work.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, TextIO

from kernelkit import __version__
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
from kernelkit.core.fsutil import staged_directory
from kernelkit.core.paths import TEMPLATES_DIR, TOOLCHAIN_DIR, cache_dir
from kernelkit.kernel.spec import KernelSpec, load_spec

STAMP_PREFIX = "/* kernelkit-build "
_KIT_DIR = Path(__file__).resolve().parents[2]       # kernelkit/


class BuildChecksFailed(KernelkitError):
    """Checks found errors (lint, binding validation, cross-check): the CLI exits 1 and nothing is written."""

    def __init__(self, message: str, findings: list[Finding], **kwargs):
        super().__init__(message, **kwargs)
        self.findings = findings


@dataclass
class BuildResult:
    spec: KernelSpec
    cl_path: Path
    xml_path: Path
    gpu_xml_path: Path | None
    bin_path: Path | None
    findings: list[Finding]
    cached: bool
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@dataclass
class CheckedKernel:
    """Everything a build writes, rendered and checked in memory."""

    spec: KernelSpec
    sources: dict            # file name -> RenderedSource
    myriad_xml: str
    gpu_xml: str | None
    findings: list[Finding]


# --- checks ------------------------------------------------------------------------------------------

def check_spec(spec: KernelSpec) -> CheckedKernel:
    """Render the sources and bindings and run every check. Compile errors raise KernelkitError naming the
    template line; other findings are returned."""
    from kernelkit.kernel.bindings import crosscheck, gpu, myriad_check, myriad_read, myriad_write
    from kernelkit.kernel.render import gpu_host_defines, gpu_layer, myriad_layers, render_sources
    from kernelkit.kernel.builder.hostcheck import host_check
    from kernelkit.kernel.builder.lint import lint_source

    sources = render_sources(spec)
    findings: list[Finding] = []
    compile_errors: list[Finding] = []
    for name, rendered in sources.items():
        result = host_check(rendered, name=name, view="MYRIAD")
        compile_errors += [f for f in result if f.is_error]
        findings += [f for f in result if not f.is_error]
    gpu_xml = None
    if len(spec.stages) == 1:
        name, rendered = next(iter(sources.items()))
        result = host_check(rendered, name=name, defines=gpu_host_defines(spec), view="GPU")
        compile_errors += [f for f in result if f.is_error]
        findings += [f for f in result if not f.is_error]
    if compile_errors:
        first = compile_errors[0]
        more = f" (and {len(compile_errors) - 1} more)" if len(compile_errors) > 1 else ""
        hint = "clang-15 host check (OpenCL 1.2, fp16 on, fp64 off, -Werror); `kernelkit render` shows the " \
               "generated source"
        param = _param_at(spec, sources, first.where)
        if param:
            hint = f"the code there comes from kernel.params.{param} in {spec.path}; " + hint
        raise KernelkitError(f"kernel does not compile: {first.message}{more}", path=first.path, line=first.line,
                             where=f"generated {first.where}" if first.where else None, hint=hint)
    for name, rendered in sources.items():
        findings += lint_source(rendered.text, path=name, origin=rendered.origin)

    layers = myriad_layers(spec)
    myriad_xml = myriad_write.dumps(layers)
    reparsed = myriad_read.loads(myriad_xml, path=spec.dir / f"{spec.name}.xml")
    findings += [_on_spec(f, spec)
                 for f in myriad_check.validate(reparsed, numeric_attributes=numeric_attributes(spec))]
    by_entry = {st.entry: rendered.text for st, rendered in zip(spec.stages, sources.values())}
    for layer in reparsed:
        findings += [_on_spec(f, spec) for f in crosscheck.check(layer, by_entry)]
    if len(spec.stages) == 1:
        glayer = gpu_layer(spec)
        gpu_xml = gpu.dumps([glayer])
        greparsed = gpu.loads(gpu_xml, path=spec.dir / f"{spec.name}.gpu.xml")
        findings += [_on_spec(f, spec) for f in gpu.validate(greparsed)]
        gpu_view = "#define KERNELKIT_GPU 1\n" + next(iter(sources.values())).text
        for layer in greparsed:
            findings += [_on_spec(f, spec) for f in crosscheck.check_gpu(layer, gpu_view)]
    return CheckedKernel(spec, sources, myriad_xml, gpu_xml, _dedupe(findings))


def numeric_attributes(spec: KernelSpec) -> set[str]:
    """The layer attributes numeric in every case of the spec: names its size rules may use (the plugin makes
    each numeric attribute of the layer a name there)."""
    from kernelkit.kernel.bindings import expr

    names = None
    for case in spec.cases:
        numeric = {k for k, v in case.attrs.items() if expr.numeric_attribute(v) is not None}
        names = numeric if names is None else names & numeric
    return names or set()


def _param_at(spec: KernelSpec, sources: dict, where: str | None) -> str | None:
    """The template parameter whose text sits at `file:line:column` of a generated source, if any."""
    try:
        name, line, column = where.rsplit(":", 2)
        text = sources[name].text.splitlines()[int(line) - 1]
    except (AttributeError, ValueError, KeyError, IndexError):
        return None
    for key, value in spec.params.items():
        if isinstance(value, str) and value.strip():
            start = text.find(value)
            if start >= 0 and start < int(column) <= start + len(value) + 1:
                return key
    return None


def _on_spec(finding: Finding, spec: KernelSpec) -> Finding:
    """Binding findings are about XML generated from the spec: point them at the spec."""
    if finding.path is None or str(finding.path).endswith((".xml", ".cl")):
        where = " ".join(x for x in (Path(finding.path).name if finding.path else None, finding.where) if x)
        return Finding(finding.severity, finding.message, path=str(spec.path), line=None, where=where or None,
                       hint=finding.hint)
    return finding


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.severity, f.message, f.path, f.line, f.where)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --- the cache key -------------------------------------------------------------------------------------

def _hash_tree(digest, root: Path, pattern: str = "**/*", exclude: Path | None = None) -> None:
    exclude = exclude.resolve() if exclude else None
    for path in sorted(root.glob(pattern)):
        relative = path.relative_to(root)
        if not path.is_file() or "__pycache__" in relative.parts or any(p.startswith(".") for p in relative.parts):
            continue
        if exclude and (path.resolve() == exclude or exclude in path.resolve().parents):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")


def build_key(spec: KernelSpec, clc_identity: str | None, out_dir: Path | None = None) -> str:
    """The content hash a build is stamped with (OUT itself is left out when it sits in the kernel folder)."""
    from kernelkit.kernel.builder.hostcheck import clang_version

    digest = hashlib.sha256()
    digest.update(f"kernelkit {__version__}\0clang {clang_version()}\0clc {clc_identity}\0".encode())
    _hash_tree(digest, spec.dir, exclude=out_dir)
    _hash_tree(digest, TEMPLATES_DIR)
    _hash_tree(digest, TOOLCHAIN_DIR / "shave")
    for part in ("kernel/spec.py", "kernel/render.py", "kernel/builder", "kernel/bindings"):
        target = _KIT_DIR / part
        if target.is_file():
            digest.update(target.read_bytes())
        else:
            _hash_tree(digest, target, "*.py")
    return digest.hexdigest()[:32]


def _stamp(key: str) -> str:
    return f"{STAMP_PREFIX}{key} */\n"


def _read_stamp(cl_path: Path) -> str | None:
    try:
        with open(cl_path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    if first.startswith(STAMP_PREFIX):
        return first[len(STAMP_PREFIX):].split()[0]
    return None


def _ours(path: Path) -> bool:
    """A file a kernelkit build wrote (so a rebuild may replace it)."""
    if path.suffix == ".cl":
        return _read_stamp(path) is not None
    if path.suffix == ".xml":
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:400]
        except OSError:
            return False
        return "written by kernelkit" in head
    if path.suffix == ".bin":
        return _ours(path.with_suffix(".cl"))
    return False


# --- building ----------------------------------------------------------------------------------------------

def output_names(spec: KernelSpec, with_bin: bool) -> list[str]:
    from kernelkit.kernel.render import source_filenames

    names = list(source_filenames(spec)) + [f"{spec.name}.xml"]
    if len(spec.stages) == 1:
        names.append(f"{spec.name}.gpu.xml")
    if with_bin:
        names += [Path(n).with_suffix(".bin").name for n in source_filenames(spec)]
    return names


def build_kernel(kernel_dir: str | Path, out_dir: str | Path, *, force: bool = False) -> BuildResult:
    """Build one kernel folder into `out_dir` (other files there are left alone)."""
    from kernelkit.kernel.builder.clc import MISSING_NOTE, find_clc

    spec = load_spec(kernel_dir)
    out_dir = Path(out_dir)
    clc = find_clc()
    key = build_key(spec, clc.identity() if clc else None, out_dir)
    names = output_names(spec, clc is not None)
    targets = [out_dir / n for n in names]
    notes = [] if clc else [f"{spec.name}: {MISSING_NOTE}"]
    if len(spec.stages) > 1:
        notes.append(f"{spec.name}: no .gpu.xml: the GPU plugin runs one kernel per layer, this one has "
                     f"{len(spec.stages)} stages")

    def result(cached: bool, findings: list[Finding]) -> BuildResult:
        cl, xml = out_dir / names[0], out_dir / f"{spec.name}.xml"
        gpu_xml = out_dir / f"{spec.name}.gpu.xml" if len(spec.stages) == 1 else None
        bin_path = out_dir / f"{spec.name}.bin" if clc else None
        return BuildResult(spec, cl, xml, gpu_xml, bin_path, findings, cached, notes, targets)

    if out_dir.exists() and not out_dir.is_dir():
        raise KernelkitError("output path exists and is not a folder", path=out_dir, hint="choose another -o")
    if all(t.is_file() for t in targets) and _read_stamp(targets[0]) == key:
        return result(True, [])
    if not force:
        for target in targets:
            if target.exists() and not _ours(target):
                raise KernelkitError("would overwrite a file kernelkit did not write", path=target,
                                     hint="choose another output folder, or pass --force")

    cached_dir = cache_dir("build") / key
    if (cached_dir / ".complete").is_file() and _restore(cached_dir, names, out_dir):
        return result(True, [])

    checked = check_spec(spec)
    errors = [f for f in checked.findings if f.is_error]
    if errors:
        raise BuildChecksFailed(f"{len(errors)} check(s) failed; nothing written", checked.findings,
                                path=spec.path, where=spec.name)
    # the stamped .cl goes in last: a build killed half-way never looks up to date
    with staged_directory(out_dir, allow_existing=True, last=names[:1]) as stage:
        for name, rendered in checked.sources.items():
            (stage / name).write_text(_stamp(key) + rendered.text, encoding="utf-8")
        (stage / f"{spec.name}.xml").write_text(checked.myriad_xml, encoding="utf-8")
        if checked.gpu_xml is not None:
            (stage / f"{spec.name}.gpu.xml").write_text(checked.gpu_xml, encoding="utf-8")
        if clc:
            for name in checked.sources:
                clc.compile(stage / name, stage / Path(name).with_suffix(".bin"))
        _store_in_cache(stage, names, cached_dir)
    return result(False, checked.findings)


def _restore(cached_dir: Path, names: list[str], out_dir: Path) -> bool:
    """Copy a cached build into OUT; False (nothing written) when the entry vanished meanwhile."""
    try:
        with staged_directory(out_dir, allow_existing=True, last=names[:1]) as stage:
            for n in names:
                shutil.copy2(cached_dir / n, stage / n)
    except FileNotFoundError:     # another process replaced the entry: build instead
        return False
    return True


def _store_in_cache(stage: Path, names: list[str], cached_dir: Path) -> None:
    try:
        with staged_directory(cached_dir, force=True) as cache_stage:
            for n in names:
                shutil.copy2(stage / n, cache_stage / n)
            (cache_stage / ".complete").write_text("")
    except OSError:
        pass  # a cache that cannot be written only costs time


def build_all(kernel_dirs: Iterable[str | Path], out_dir: str | Path, *, force: bool = False,
              stream: TextIO | None = None, err_stream: TextIO | None = None) -> int:
    """Build several kernels into one folder, reporting each (failures on `err_stream`) and going on after a
    failure; 0 ok, 1 checks failed, 2 bad input."""
    from kernelkit.kernel.builder.clc import MISSING_NOTE

    stream = stream or sys.stdout
    err_stream = err_stream or sys.stderr
    status = 0
    without_bin = []   # said once at the end, not once per kernel
    for kernel_dir in kernel_dirs:
        try:
            res = build_kernel(kernel_dir, out_dir, force=force)
        except BuildChecksFailed as exc:
            print(f"kernelkit: FAIL {kernel_dir}: {exc.message}", file=err_stream)
            for finding in exc.findings:
                print(f"  {finding}", file=err_stream)
            status = max(status, 1)
            continue
        except ToolchainUnavailable:
            raise
        except KernelkitError as exc:
            print(f"kernelkit: error: {exc}", file=err_stream)
            status = 2
            continue
        print(report_line(res), file=stream)
        for finding in res.findings:
            print(f"  {finding}", file=stream)
        for note in res.notes:
            if note.endswith(MISSING_NOTE):
                without_bin.append(res.spec.name)
            else:
                print(f"  note: {note}", file=stream)
    if without_bin:
        names = ", ".join(without_bin) if len(without_bin) <= 3 else f"{len(without_bin)} kernels"
        print(f"note: no .bin for {names}: {MISSING_NOTE}", file=stream)
    stream.flush()
    err_stream.flush()
    return status


def report_line(res: BuildResult) -> str:
    files = ", ".join(p.name for p in res.files)
    if res.cached:
        return f"up to date {res.spec.name}: {files} (unchanged, no work done)"
    return f"built {res.spec.name}: {files}"
