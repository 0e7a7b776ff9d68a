#!/usr/bin/env python3
"""Generate the contract goldens (tests/contracts/golden/) from the code as it is, or show how it now differs.

    python tests/contracts/make_goldens.py            # (re)write every golden; `git diff` then shows changes
    python tests/contracts/make_goldens.py --check    # write nothing: print a diff per changed golden, exit 1
    python tests/contracts/make_goldens.py --only 'formats/|zoo/'   # only goldens whose path matches

Run it with the interpreter that has kernelkit's dependencies (e.g. /work/main/.venv/bin/python); the CLI runs
as `python -m kernelkit` with this checkout first on PYTHONPATH. Needs the legacy MYRIAD toolchain
(`kernelkit toolchain setup`) and, once, PyPI (the model-zoo wheels, cached under <kernelkit cache>/contracts).
Everything it runs writes into a temporary folder, never into the repository (apart from golden/).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract_support import (GOLDEN, Contract, Unavailable, explain_mismatch, golden_text,  # noqa: E402
                              kernelkit, parse_commands, specs, write_tree)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the stored goldens, write nothing")
    parser.add_argument("--only", type=re.compile, default=None, help="only goldens whose path matches REGEX")
    args = parser.parse_args(argv)

    top = kernelkit("--help")
    if top.code != 0:
        print(f"`kernelkit --help` exited {top.code}:\n{top.stdout}{top.stderr}", file=sys.stderr)
        return 2
    chosen = [s for s in specs(parse_commands(top.stdout)) if not args.only or args.only.search(s.path)]

    start = time.monotonic()
    produced: dict[str, str] = {}
    unavailable: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kernelkit-contracts-") as tmp:
        ctx = Contract(Path(tmp))
        for spec in chosen:
            t0 = time.monotonic()
            try:
                produced[spec.path] = spec.produce(ctx)
            except Unavailable as exc:
                unavailable.append(f"{spec.path}: {exc}")
                continue
            print(f"{time.monotonic() - t0:6.1f} s  {spec.path}", file=sys.stderr)
    print(f"{len(produced)} golden(s) produced in {time.monotonic() - start:.0f} s", file=sys.stderr)
    if unavailable:
        print("unavailable:\n  " + "\n  ".join(unavailable), file=sys.stderr)
        if not args.check:
            return 3

    if args.check:
        changed = [p for p, text in produced.items() if golden_text(p) != text]
        for path in changed:
            print(explain_mismatch(path, golden_text(path), produced[path]))
            print()
        print(f"{len(changed)} of {len(produced)} golden(s) differ", file=sys.stderr)
        return 1 if changed else 0

    write_tree(GOLDEN, produced)
    if args.only is None:      # a golden no producer writes any more is stale
        for stale in sorted(p for p in GOLDEN.rglob("*") if p.is_file()
                            and str(p.relative_to(GOLDEN)) not in produced):
            print(f"removing stale golden/{stale.relative_to(GOLDEN)}", file=sys.stderr)
            stale.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
