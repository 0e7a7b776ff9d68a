"""The legacy MYRIAD toolchain: Python 3.9 + pip `openvino==2021.4.2` (which ships the MYRIAD plugin) and a
small native shim that compiles and exports blobs, all provisioned under the per-user cache.

Layout under `paths.cache_dir("toolchain")`:
    apt/            private apt configuration, lists and cache (the system's apt state is never touched)
    debs/           the downloaded bullseye .deb files
    python3.9/      the .deb files unpacked with `dpkg -x` (used through LD_LIBRARY_PATH)
    wheels/         the pip wheel that bootstraps the venv
    venv/           Python 3.9 venv with openvino 2021.4.2
    bin/myriad_shim-<digest>  the compile/export shim, linked against the wheel's libinference_engine.so
Each step leaves a stamp file when it is complete, so a second `setup` does nothing. The shim's name carries
the digest of its source instead: checkouts whose shim sources differ share one cache, each with its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kernelkit.core import paths
from kernelkit.core.errors import ToolchainUnavailable

OPENVINO_VERSION = "2021.4.2"
PIP_REQUIREMENT = "pip<25"
DEBIAN_SUITE = "bullseye"
MULTIARCH = "x86_64-linux-gnu"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
LEGACY_DIR = paths.TOOLCHAIN_DIR / "legacy"
SHIM_DIR = paths.TOOLCHAIN_DIR / "myriad_shim"
SETUP_HINT = "run `kernelkit toolchain setup` (needs Debian's package registry and PyPI once)"


@dataclass(frozen=True)
class Component:
    name: str
    path: Path
    present: bool
    detail: str = ""


@dataclass(frozen=True)
class Toolchain:
    """Where the pieces of a provisioned (or not yet provisioned) toolchain live."""

    root: Path

    @property
    def sysroot(self) -> Path:
        return self.root / "python3.9"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python3.9"

    @property
    def site_packages(self) -> Path:
        return self.venv / "lib" / "python3.9" / "site-packages"

    @property
    def openvino_libs(self) -> Path:
        return self.site_packages / "openvino" / "libs"

    @property
    def shim(self) -> Path:
        return self.root / "bin" / f"myriad_shim-{_shim_digest()[:16]}"

    def env(self) -> dict[str, str]:
        """Environment for running the venv's Python or the shim: the unpacked libraries come first."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        libs = [str(self.sysroot / "usr" / "lib" / MULTIARCH), str(self.sysroot / "lib" / MULTIARCH),
                str(self.openvino_libs)]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p])
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def components(self) -> list[Component]:
        return [
            Component("python3.9 (Debian bullseye, unpacked)", self.sysroot / "usr" / "bin" / "python3.9",
                      _stamp_ok(self.sysroot, _deb_list_digest())),
            Component("venv (Python 3.9)", self.python, _stamp_ok(self.venv, "venv")),
            Component(f"openvino {OPENVINO_VERSION} with libmyriadPlugin.so", self.openvino_libs / "libmyriadPlugin.so",
                      _stamp_ok(self.site_packages, _requirements_digest())),
            # Written by a rename once built, under a name that is its source's digest: present means current.
            Component("myriad_shim (compile + export)", self.shim, self.shim.is_file()),
        ]

    def ready(self) -> bool:
        return all(c.present for c in self.components())


def locate() -> Toolchain:
    """The toolchain location for the current cache folder (KERNELKIT_CACHE_DIR or the user cache)."""
    return Toolchain(paths.cache_dir("toolchain"))


def require() -> Toolchain:
    """The provisioned toolchain, or ToolchainUnavailable (CLI exit 3) naming what is missing."""
    toolchain = locate()
    missing = [c.name for c in toolchain.components() if not c.present]
    if missing:
        raise ToolchainUnavailable(
            f"the legacy MYRIAD toolchain (openvino {OPENVINO_VERSION}) is not provisioned in {toolchain.root}; "
            f"missing: {', '.join(missing)}", hint=SETUP_HINT)
    return toolchain


# ---------------------------------------------------------------------------------------------- stamps

STAMP = ".kernelkit-complete"


def _stamp_ok(folder: Path, digest: str) -> bool:
    try:
        return (folder / STAMP).read_text().strip() == digest
    except OSError:
        return False


def _write_stamp(folder: Path, digest: str) -> None:
    (folder / STAMP).write_text(digest + "\n")


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def debian_packages() -> list[str]:
    lines = (LEGACY_DIR / "debian-packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _deb_list_digest() -> str:
    return _digest(DEBIAN_SUITE, *debian_packages())


def _requirements_digest() -> str:
    return _digest((LEGACY_DIR / "requirements.txt").read_bytes())


SHIM_FLAGS = ["-std=c++17", "-O2", "-D_GLIBCXX_USE_CXX11_ABI=0", "-Wall", "-Wextra"]


@functools.lru_cache(maxsize=1)
def _shim_digest() -> str:
    return _digest(*(p.read_bytes() for p in sorted(SHIM_DIR.glob("*.cpp"))), *SHIM_FLAGS)


# ---------------------------------------------------------------------------------------------- setup

Log = Callable[[str], None]


def _run(cmd: list[str], *, what: str, cwd: Path | None = None, env: dict | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise ToolchainUnavailable(f"{what}: {cmd[0]} is not installed ({exc})",
                                   hint="install it with the system package manager") from None
    except subprocess.TimeoutExpired:
        raise ToolchainUnavailable(f"{what}: timed out after {timeout:.0f} s", hint=SETUP_HINT) from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ToolchainUnavailable(f"{what} failed (exit {proc.returncode}):\n{tail}", hint=SETUP_HINT)
    return proc


def debian_mirror() -> str:
    """The Debian archive the system's apt already uses (KERNELKIT_DEBIAN_MIRROR overrides it)."""
    override = os.environ.get("KERNELKIT_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    candidates: list[str] = []
    sources = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        if source.suffix == ".sources":  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(.+)$", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and any("-" not in s for s in suites.group(1).split()):
                    candidates += uris.group(1).split()
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and "-" not in m.group(2):
                    candidates.append(m.group(1))
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise ToolchainUnavailable(
        "no Debian archive found in the system's apt sources (/etc/apt/sources.list*)",
        hint="set KERNELKIT_DEBIAN_MIRROR to a Debian archive URL that still serves the bullseye suite")


def _apt_options(apt_dir: Path) -> list[str]:
    return [
        f"-oDir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-oDir::Etc::SourceParts=/nonexistent",
        "-oDir::Etc::PreferencesParts=/nonexistent",
        f"-oDir::Etc::Preferences={apt_dir / 'preferences'}",
        f"-oDir::State::Lists={apt_dir / 'lists'}",
        f"-oDir::Cache={apt_dir / 'cache'}",
        "-oDebug::NoLocking=1",
        "-qq",
    ] + (["-oAPT::Sandbox::User=root"] if os.geteuid() == 0 else [])  # _apt cannot write our private folders


def _provision_python(tc: Toolchain, log: Log) -> None:
    if not DEBIAN_KEYRING.exists():
        raise ToolchainUnavailable(f"Debian's archive keyring {DEBIAN_KEYRING} is missing",
                                   hint="install the debian-archive-keyring package")
    mirror = debian_mirror()
    apt_dir = tc.root / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {DEBIAN_SUITE} main\n")
    (apt_dir / "preferences").write_text("")
    options = _apt_options(apt_dir)
    log(f"  apt-get update (private lists, suite {DEBIAN_SUITE})")
    _run(["apt-get", *options, "--error-on=any", "update"], what=f"reading the Debian {DEBIAN_SUITE} package lists")
    debs = tc.root / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    for package in debian_packages():
        log(f"  apt-get download {package}")
        try:
            _run(["apt-get", *options, "download", package], what=f"downloading {package}", cwd=debs)
        except ToolchainUnavailable as exc:
            raise ToolchainUnavailable(
                f"Debian package {package} cannot be had from the {DEBIAN_SUITE} suite: {exc.message}",
                hint="check that the Debian archive in /etc/apt/sources.list* still serves bullseye, "
                     "or set KERNELKIT_DEBIAN_MIRROR") from None
    stage = Path(tempfile.mkdtemp(prefix=".python3.9.", dir=tc.root))
    try:
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(stage)], what=f"unpacking {deb.name}")
        shutil.rmtree(tc.sysroot, ignore_errors=True)
        os.replace(stage, tc.sysroot)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _run([str(tc.sysroot / "usr" / "bin" / "python3.9"), "-c", "import ssl, ctypes, decimal, distutils.util, venv"],
         what="checking the unpacked Python 3.9", env=tc.env())
    _write_stamp(tc.sysroot, _deb_list_digest())
    # Only the unpacked tree is used from here on.
    shutil.rmtree(debs, ignore_errors=True)
    shutil.rmtree(apt_dir, ignore_errors=True)


def _provision_venv(tc: Toolchain, log: Log) -> None:
    shutil.rmtree(tc.venv, ignore_errors=True)
    log("  python3.9 -m venv --without-pip")
    _run([str(tc.sysroot / "usr" / "bin" / "python3.9"), "-m", "venv", "--without-pip", str(tc.venv)],
         what="creating the Python 3.9 venv", env=tc.env())
    # Debian's ensurepip wants system wheels: bootstrap pip from a wheel the host pip downloads.
    wheels = tc.root / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    log(f"  host pip download {PIP_REQUIREMENT} for Python 3.9")
    _run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
          "--python-version", "3.9", "-d", str(wheels), PIP_REQUIREMENT], what=f"downloading {PIP_REQUIREMENT}")
    wheel = next(wheels.glob("pip-*.whl"), None)
    if wheel is None:
        raise ToolchainUnavailable(f"pip download left no pip wheel in {wheels}", hint=SETUP_HINT)
    _run([str(tc.python), f"{wheel}/pip", "install", "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
         what="installing pip into the venv", env=tc.env())
    _write_stamp(tc.venv, "venv")


def _provision_openvino(tc: Toolchain, log: Log) -> None:
    log(f"  pip install openvino=={OPENVINO_VERSION} (Python 3.9)")
    _run([str(tc.python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-warn-script-location",
          "-r", str(LEGACY_DIR / "requirements.txt")], what=f"installing openvino {OPENVINO_VERSION}", env=tc.env())
    if not (tc.openvino_libs / "libmyriadPlugin.so").exists():
        raise ToolchainUnavailable(f"openvino {OPENVINO_VERSION} installed but has no libmyriadPlugin.so in "
                                   f"{tc.openvino_libs}", hint="remove the folder and run setup again")
    _run([str(tc.python), "-c", "from openvino.inference_engine import IECore; IECore()"],
         what="importing openvino 2021.4 in the venv", env=tc.env())
    _write_stamp(tc.site_packages, _requirements_digest())


def _build_shim(tc: Toolchain, log: Log) -> None:
    out_dir = tc.shim.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [str(p) for p in sorted(SHIM_DIR.glob("*.cpp"))]
    log("  g++ " + " ".join(SHIM_FLAGS) + " ... -linference_engine")
    tmp = out_dir / f".{tc.shim.name}.{os.getpid()}.tmp"
    _run(["g++", *SHIM_FLAGS, *sources, "-o", str(tmp), f"-L{tc.openvino_libs}", "-linference_engine",
          "-rdynamic",
          f"-Wl,-rpath,{tc.openvino_libs}"], what="building the MYRIAD shim")
    os.replace(tmp, tc.shim)


STEPS = [
    ("python3.9 from Debian bullseye", lambda tc: tc.components()[0].present, _provision_python),
    ("venv with pip", lambda tc: tc.components()[1].present, _provision_venv),
    (f"openvino {OPENVINO_VERSION}", lambda tc: tc.components()[2].present, _provision_openvino),
    ("myriad_shim", lambda tc: tc.components()[3].present, _build_shim),
]


@dataclass
class SetupResult:
    toolchain: Toolchain
    done: list[str]          # the steps that ran; empty when everything was already there
    seconds: float


def setup(log: Log = print) -> SetupResult:
    """Provision whatever is missing; idempotent. Raises ToolchainUnavailable when a piece cannot be had."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise ToolchainUnavailable(f"the openvino {OPENVINO_VERSION} wheels exist for x86_64 Linux only, "
                                   f"not {platform.system()} {platform.machine()}")
    tc = locate()
    start = time.monotonic()
    done: list[str] = []
    with _locked(tc.root / ".setup.lock"):
        for index, (title, present, step) in enumerate(STEPS, 1):
            # A redone earlier step invalidates the later ones (the venv points into the unpacked Python).
            if present(tc) and not done:
                continue
            log(f"[{index}/{len(STEPS)}] {title}")
            step(tc, log)
            done.append(title)
    return SetupResult(tc, done, time.monotonic() - start)


@contextlib.contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
