"""pytest plugin (entry point `kernelkit`): kernel conformance cases as pytest tests.

`pytest kernels/` or `pytest kernels/mish_h` collects each `kernel.toml` as a file whose items are its cases
(spec cases and ONNX node tests), so `pytest -n 2` spreads them over xdist workers. It is loaded by every
pytest run, so it imports nothing heavy until it meets a kernel.toml, and it only collects a kernel.toml
that lives under kernels/, was named on the command line (the file or its folder), or when
`--kernel-specs` is given: example specs kept under tests/ stay out of ordinary runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SPEC_FILE = "kernel.toml"
_BUILDS_KEY = pytest.StashKey[object]()


def pytest_addoption(parser):
    group = parser.getgroup("kernelkit", "kernelkit conformance")
    group.addoption("--kernel-specs", action="store_true", default=False,
                    help="collect every kernel.toml met, not only those under kernels/ or named explicitly")
    group.addoption("--kernel-data", metavar="DIR", default=None,
                    help="save each case's inputs, outputs and reference outputs as DIR/<kernel>/<case>.npz")
    group.addoption("--kernel-arithmetic", choices=("fp32", "fp16"), default="fp32",
                    help="half arithmetic of the kernels under test: fp32 (default) or fp16 (real 16-bit half, "
                         "rounded per operation as on SHAVE)")


def _named_on_command_line(path: Path, config) -> bool:
    for arg in config.args:
        target = Path(str(arg).split("::", 1)[0])
        if not target.is_absolute():
            target = Path(config.invocation_params.dir) / target
        try:
            target = target.resolve()
        except OSError:
            continue
        if target == path or target == path.parent:
            return True
    return False


def _wanted(path: Path, config) -> bool:
    if config.getoption("kernel_specs"):
        return True
    from kernelkit.core.paths import KERNELS_DIR

    path = path.resolve()
    if path.is_relative_to(KERNELS_DIR.resolve()):
        return True
    return _named_on_command_line(path, config)


def pytest_collect_file(file_path: Path, parent):
    if file_path.name != SPEC_FILE or not _wanted(file_path, parent.config):
        return None
    return KernelSpecFile.from_parent(parent, path=file_path)


class CaseNotPassing(Exception):
    def __init__(self, result):
        super().__init__(result.message)
        self.result = result


class KernelSpecFile(pytest.File):
    def collect(self):
        from kernelkit.core.errors import KernelkitError
        from kernelkit.kernel.spec import load_spec
        from kernelkit.harness.conformance import plan_kernel

        try:
            spec = load_spec(self.path.parent)
            planned = plan_kernel(spec)
        except KernelkitError as exc:
            raise self.CollectError(f"kernelkit: {exc}") from None
        for item in planned:
            case = KernelCaseItem.from_parent(self, name=item.name, planned=item)
            case.extra_keyword_matches.add(spec.name)
            yield case


class KernelCaseItem(pytest.Item):
    def __init__(self, *, planned, **kwargs):
        super().__init__(**kwargs)
        self.planned = planned

    def runtest(self):
        from kernelkit.harness.conformance import PASS, SKIP, Builds, run_case

        builds = self.config.stash.get(_BUILDS_KEY, None)
        if builds is None:
            builds = self.config.stash[_BUILDS_KEY] = Builds()
        data = self.config.getoption("kernel_data")
        result = run_case(self.planned, builds, data_dir=Path(data) if data else None,
                          arithmetic=self.config.getoption("kernel_arithmetic"))
        self.user_properties.append(("status", result.status))
        if result.status == SKIP:
            pytest.skip(result.message)
        if result.status != PASS:
            raise CaseNotPassing(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseNotPassing):
            from kernelkit.harness.report import case_details

            return case_details(excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.planned.id}"
