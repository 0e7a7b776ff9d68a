"""Full library conformance time on 2 cores, cold caches against warm caches.

    .venv/bin/python benchmarks/bench_conformance.py [--runner pytest|cli] [--repeat N] [-k FILTER]

Cold: a fresh, empty kernelkit cache (builds, ONNX node tests) and PoCL kernel cache. Warm: the same
command again on the caches the cold run filled. The default runner is `pytest kernels/ -n 2` (one xdist
worker per core); `--runner cli` times `kernelkit test` (one process). Prints one Markdown table row per run
and the cold/warm ratio. The exit status of the conformance run itself is reported, not judged: the
benchmark measures time, the test suite judges results.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def command(runner: str, pattern: str | None, report: Path) -> list[str]:
    if runner == "cli":
        cmd = [sys.executable, "-m", "kernelkit", "test", "--report", str(report)]
        return cmd + (["-k", pattern] if pattern else [])
    cmd = [sys.executable, "-m", "pytest", str(REPO / "kernels"), "-n", "2", "-q", "-p", "no:cacheprovider",
           "--no-header", "-o", "addopts="]
    return cmd + (["-k", pattern] if pattern else [])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(cmd: list[str], cache: Path) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds of the whole process tree (less sensitive to other load), exit, last line."""
    env = dict(os.environ, KERNELKIT_CACHE_DIR=str(cache / "kernelkit"), POCL_CACHE_DIR=str(cache / "pocl"))
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines() or [""]
    tail = next((line for line in lines if line.startswith("conformance:")), lines[-1])
    return elapsed, _children_cpu() - cpu_before, proc.returncode, tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", choices=("pytest", "cli"), default="pytest")
    parser.add_argument("--repeat", type=int, default=1, help="cold+warm pairs to run (median reported)")
    parser.add_argument("-k", dest="pattern", help="restrict to matching cases (for a quick check)")
    args = parser.parse_args(argv)

    colds, warms, cold_cpu, warm_cpu = [], [], [], []
    print(f"# conformance benchmark: runner={args.runner}, cpus={os.cpu_count()}, "
          f"python {platform.python_version()}, {platform.machine()}")
    print("| run | caches | wall s | cpu s | exit | last line |")
    print("|---|---|---|---|---|---|")
    for index in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
            cache = Path(tmp)
            cmd = command(args.runner, args.pattern, cache / "report")
            for label, walls, cpus in (("cold", colds, cold_cpu), ("warm", warms, warm_cpu)):
                seconds, cpu, status, tail = timed_run(cmd, cache)
                walls.append(seconds)
                cpus.append(cpu)
                print(f"| {index + 1} | {label} | {seconds:.1f} | {cpu:.1f} | {status} | {tail[:80]} |", flush=True)
    cold, warm = statistics.median(colds), statistics.median(warms)
    ccpu, wcpu = statistics.median(cold_cpu), statistics.median(warm_cpu)
    print(f"\nwall: cold {cold:.1f} s, warm {warm:.1f} s, cold/warm = {cold / warm:.2f}x")
    print(f"cpu:  cold {ccpu:.1f} s, warm {wcpu:.1f} s, cold/warm = {ccpu / wcpu:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
