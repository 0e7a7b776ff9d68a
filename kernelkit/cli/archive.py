"""`kernelkit archive`: pack a compiled blob into a Luxonis NN Archive."""

from __future__ import annotations

NAME = "archive"
HELP = "pack a compiled .blob (or a patch folder holding one) into an NN Archive (.tar.xz) for DepthAI"
ORDER = 65


def _floats(text: str) -> list[float]:
    import argparse

    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def add_arguments(parser):
    parser.add_argument("source", metavar="OUTDIR_OR_BLOB", help="a .blob, or a folder with one .blob "
                        "(and optionally patch-report.json)")
    parser.add_argument("-o", "--output", required=True, metavar="NAME.tar.xz", help="archive to write")
    parser.add_argument("--name", help="model name in the archive (default: from the output file name)")
    parser.add_argument("--mean", type=_floats, help="per-channel mean, e.g. 123.7,116.3,103.5 (default: patch "
                        "report, else 0)")
    parser.add_argument("--scale", type=_floats, help="per-channel scale, e.g. 58.4,57.1,57.4 (default: patch "
                        "report, else 1)")
    import argparse

    parser.add_argument("--reverse-channels", action=argparse.BooleanOptionalAction, default=None,
                        help="the model wants RGB rather than DepthAI's BGR frames (default: patch report, else no)")


def run(args) -> int:
    from kernelkit.delivery.archive import build_archive

    result = build_archive(args.source, args.output, name=args.name, mean=args.mean, scale=args.scale,
                           reverse_channels=args.reverse_channels)
    model = result.config["model"]
    print(f"wrote {result.path}: {result.blob_name}, {len(model['inputs'])} input(s), "
          f"{len(model['outputs'])} output(s)")
    return 0
