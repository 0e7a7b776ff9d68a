"""Interrupted runs, measured: `patch`, `build`, `compile` and `archive` killed at random points.

    nice -n 10 .venv/bin/python benchmarks/kill_runs.py [--kills 40] [--commands patch,build,compile,archive]
        [--seed 0] [--work DIR] [--markdown]

For each command an output is first made complete ("previous"), and the complete output of a run with
different options is computed elsewhere ("new"). Then, again and again, the command is run over the previous
output with the new options and killed (SIGINT or SIGKILL, alternately) at a random moment of its run; half the
kills aim at its writing phase (from the moment a calibration run's first temporary or staging sibling of the
output appeared; a run that ends before the kill lands is retried). After each kill the output must be whole
and be the previous one or the new one, or be absent: anything else counts as broken. Which run wrote an output
is read from its content (the patch report's mean, the blob header's SHAVE count, the archive config's mean, the
built kernel's description and layer type), and whole means it reads back (the patched IR loads with its .bin,
the blob's header matches its size, the archive's members are there), not byte equality with a reference: the
code under test may change while the benchmark runs. Then the sibling leftovers of the killed
writer (`.NAME.PID.*.tmp`/`.staging`, `.NAME.old-PID`) are counted, the command is run to the end, and what it
left (the new output, no leftovers) is checked. `build` writes several kernels' files into one folder, file by
file: there a mix of old and new files is "stale" when the kernel's stamp (its .cl) is still the old one, so the
next build redoes it, and broken when the stamp says new while another file is old.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNELKIT = [sys.executable, "-c", "import sys; from kernelkit.cli import main; sys.exit(main())"]
COMMANDS = ("patch", "build", "compile", "archive")


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*KERNELKIT, *map(str, argv)], capture_output=True, text=True, cwd=ROOT, **kw)


def _tree(path: Path):
    """A comparable picture of an output: file -> content hash (archives: the members' contents)."""
    if not os.path.lexists(path):
        return None
    if path.is_file():
        if path.name.endswith(".tar.xz"):
            try:
                with tarfile.open(path, "r:xz") as tar:
                    return tuple(sorted((m.name, hashlib.sha256(tar.extractfile(m).read()).hexdigest())
                                        for m in tar.getmembers()))
            except (tarfile.TarError, EOFError, OSError, AttributeError):
                return "unreadable archive"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return tuple(sorted((str(p.relative_to(path)), hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/")
                        for p in path.rglob("*")))


def _which(name: str, out: Path) -> str:
    """Which run wrote the output, read from its content, or "broken" when it is not whole: "previous", "new"
    or "absent". By content rather than by bytes, because the code under test may change while this runs."""
    from kernelkit.core.errors import KernelkitError

    if not os.path.lexists(out):
        return "absent"
    try:
        if name == "patch":
            names = sorted(p.name for p in out.iterdir())
            if not {"compile.conf", "model.xml", "model.bin", "patch-report.json"} <= set(names):
                return "broken"
            from kernelkit.ir.load import load_model

            load_model(out / "model.xml")                      # XML whole, every Const inside the .bin
            report = json.loads((out / "patch-report.json").read_text())
            return "new" if report["preprocessing"]["mean"] == [0.5] else "previous"
        if name == "compile":
            from kernelkit.myriad.blob import read_header

            return "new" if read_header(out).shaves == 6 else "previous"   # the header checks the file's size
        if name == "archive":
            from kernelkit.myriad.blob import read_header

            with tarfile.open(out, "r:xz") as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            config = json.loads(members["config.json"])
            read_header(members[config["model"]["metadata"]["path"]])
            mean = config["model"]["inputs"][0]["preprocessing"]["mean"]
            return "new" if mean == [1.0, 2.0, 3.0] else "previous"
    except (KernelkitError, OSError, KeyError, ValueError, tarfile.TarError, EOFError):
        return "broken"
    raise ValueError(name)


def _leftovers(path: Path) -> list[str]:
    from kernelkit.core.fsutil import is_leftover

    return sorted(p.name for p in path.parent.iterdir() if is_leftover(p.name) and p.name.startswith(f".{path.name}."))


class Setup:
    """How to run one command: its output path, and the argv of the previous and the new run."""

    def __init__(self, name: str, work: Path, model: Path | None = None):
        self.name, self.work = name, work
        demo = ROOT / "examples" / "blocked_model" / "model.onnx"
        if name == "patch":
            self.out = work / "patched"
            self.previous = ["patch", demo, "-o", self.out, "--force"]
            self.new = ["patch", demo, "-o", self.out, "--force", "--mean", "0.5", "--scale", "2"]
        elif name == "build":
            kernel = work / "kernel"
            shutil.copytree(ROOT / "kernels" / "sign_h", kernel)
            self.spec = kernel / "kernel.toml"
            self.spec_text = self.spec.read_text()
            self.out = work / "built"
            self.previous = self.new = ["build", kernel, "-o", self.out]
        else:
            patched = model or work / "for-compile"          # an IR v10 to compile, or the patched demo model
            if model is None:
                done = _run(["patch", demo, "-o", patched, "--force"])
                if done.returncode:
                    raise SystemExit(f"patch for the compile set-up failed: {done.stderr}")
            if name == "compile":
                self.out = work / "model.blob"
                self.previous = ["compile", patched, "-o", self.out, "--shaves", "4"]
                self.new = ["compile", patched, "-o", self.out, "--shaves", "6"]
            else:
                blob = work / "model.blob"
                done = _run(["compile", patched, "-o", blob])
                if done.returncode:
                    raise SystemExit(f"compile for the archive set-up failed: {done.stderr}")
                self.out = work / "model.tar.xz"
                self.previous = ["archive", blob, "-o", self.out]
                self.new = ["archive", blob, "-o", self.out, "--mean", "1,2,3", "--scale", "4,5,6"]

    def prepare(self, which: str) -> None:
        """Before a run: the inputs the previous or the new run reads (build: the spec's description)."""
        if self.name == "build":
            text = self.spec_text if which == "previous" else self.spec_text.replace(
                'description = "', 'description = "rebuilt: ', 1).replace('op = "Sign"', 'op = "SignX"', 1)
            self.spec.write_text(text)

    def complete(self, which: str):
        """The complete output of the previous or the new run, made in a scratch copy of the output path."""
        self.prepare(which)
        argv = self.previous if which == "previous" else self.new
        done = _run(argv)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{self.name} {which} run failed: {done.stderr}")
        picture = _tree(self.out)
        return picture

    def duration(self) -> tuple[float, float]:
        """(seconds a full run takes, when its writing starts): the first moment a temporary or staging
        sibling of the output exists, seen by polling every 2 ms (the end, when none was seen)."""
        from kernelkit.core.fsutil import is_leftover

        self.prepare("new")
        t0 = time.perf_counter()
        proc = subprocess.Popen([*KERNELKIT, *map(str, self.new)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=ROOT)
        writing = None
        while proc.poll() is None:
            if writing is None and any(is_leftover(n) and n.startswith(f".{self.out.name}.")
                                       for n in os.listdir(self.out.parent)):
                writing = time.perf_counter() - t0
            time.sleep(0.002)
        total = time.perf_counter() - t0
        return total, writing if writing is not None else total


def _build_state(out: Path, previous, new) -> str:
    """previous / new / absent, or stale (mixed, stamp old: the next build redoes it) / broken. A file is new
    when it carries the new description (.cl) or layer type (.xml, .gpu.xml); the stamped .cl decides what the
    next build believes."""
    if not out.is_dir() or not any(out.iterdir()):
        return "absent"
    files = {p.name: p.read_text(errors="replace") for p in out.iterdir() if p.is_file()}
    if sorted(files) != sorted(n for n, _ in new):
        return "broken"
    marks = {n: "rebuilt: " in text or 'name="SignX"' in text for n, text in files.items()}
    if all(marks.values()):
        return "new"
    if not any(marks.values()):
        return "previous"
    stamp = next((n for n in files if n.endswith(".cl")), None)
    return "stale" if stamp is not None and not marks[stamp] else "broken"


def trial_set(name: str, kills: int, rng: random.Random, work: Path, log=print, model: Path | None = None) -> Counter:
    """`kills` runs of `name` killed while running (runs that end before the kill lands are retried)."""
    folder = work / name
    folder.mkdir(parents=True)
    setup = Setup(name, folder, model)
    previous = setup.complete("previous")
    new = setup.complete("new")
    duration, writing = setup.duration()
    duration = max(duration, 0.2)
    log(f"{name}: a full run takes {duration:.1f} s, writing from {writing:.2f} s")
    tally = Counter()
    attempt = 0
    while tally["kills tried"] < kills and attempt < 3 * kills:
        attempt += 1
        setup.complete("previous")                     # the output starts complete, as the previous run left it
        setup.prepare("new")
        sig = signal.SIGINT if tally["kills tried"] % 2 == 0 else signal.SIGKILL
        # one kill in two anywhere in the run, the other in its writing phase (from the first temporary file on)
        late = attempt % 2 == 0
        at = rng.uniform(max(writing - 0.05, 0.05), duration * 1.05) if late else rng.uniform(0.05, duration * 1.05)
        started = time.perf_counter()
        proc = subprocess.Popen([*KERNELKIT, *map(str, setup.new)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=ROOT)
        while proc.poll() is None and time.perf_counter() - started < at:
            time.sleep(0.002)
        if proc.poll() is not None:
            tally["runs that ended before the kill (retried)"] += 1
            # On a machine whose load changes, the calibration run's length goes stale: aim at what runs take now.
            ended = time.perf_counter() - started
            duration, writing = ended, min(writing, ended * (writing / duration))
            continue
        proc.send_signal(sig)
        proc.wait()
        tally["kills tried"] += 1
        tally[f"{sig.name}"] += 1
        state = _build_state(setup.out, previous, new) if name == "build" else _which(name, setup.out)
        tally[f"output {state}"] += 1
        left = _leftovers(setup.out)
        tally["leftovers after the kill"] += bool(left)
        done = _run(setup.new)                          # the next run: completes, and cleans what the kill left
        after = _build_state(setup.out, previous, new) if name == "build" else _which(name, setup.out)
        if done.returncode not in (0, 1) or after != "new":
            tally["next run did not produce the new output"] += 1
        if _leftovers(setup.out):
            tally["leftovers after the next run"] += 1
    return tally


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40, help="kills per command (default 40)")
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="kernelkit-kills-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    results = {}
    for name in [c.strip() for c in args.commands.split(",") if c.strip()]:
        if name not in COMMANDS:
            parser.error(f"unknown command {name!r}")
        results[name] = trial_set(name, args.kills, rng, work)
        print(name, dict(results[name]), flush=True)
    broken = sum(t["output broken"] + t["next run did not produce the new output"] + t["leftovers after the next run"]
                 for t in results.values())
    if args.json:
        args.json.write_text(json.dumps({k: dict(v) for k, v in results.items()}, indent=2) + "\n")
    if args.markdown:
        cols = ["kills tried", "SIGINT", "SIGKILL", "output previous", "output new",
                "output absent", "output stale", "output broken", "leftovers after the kill",
                "leftovers after the next run", "next run did not produce the new output"]
        print("| command | " + " | ".join(cols) + " |")
        print("|" + "---|" * (len(cols) + 1))
        for name, t in results.items():
            print(f"| {name} | " + " | ".join(str(t[c]) for c in cols) + " |")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
