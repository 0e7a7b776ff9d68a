"""`kernelkit serve`: Luxonis blobconverter's HTTP protocol on this machine (kernelkit.compat.server)."""

from __future__ import annotations

NAME = "serve"
HELP = "answer blobconverter clients offline: its HTTP protocol (POST /compile, GET /zoo_models) on loopback"
DESCRIPTION = (HELP + ". Point the client at it with blobconverter.set_defaults(url='http://127.0.0.1:PORT') or "
               "--converter-url. Uploads are bounded by KERNELKIT_MAX_UPLOAD_BYTES, compiles by "
               "KERNELKIT_SERVE_TIMEOUT seconds, waiting requests by KERNELKIT_SERVE_QUEUE. Runs until "
               "interrupted (exit 0); exit 2 bad input (e.g. the port is taken).")
ORDER = 95


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="compiles at once (default: 1); more requests wait in the queue")
    parser.add_argument("--cache", metavar="DIR",
                        help="content-keyed blob cache (default: the kit's cache folder, blobconverter/)")
    parser.add_argument("--zoo", metavar="DIR", help="a local zoo for use_zoo requests: DIR/NAME/ holds a model")


def run(args) -> int:
    from kernelkit.compat.server import log_to_stderr, make_server
    from kernelkit.core.errors import KernelkitError
    from kernelkit.core.paths import cache_dir

    if not 1 <= args.jobs <= 64:
        raise KernelkitError(f"--jobs {args.jobs} is out of range", where="--jobs", hint="use 1 to 64")
    if not 0 <= args.port <= 65535:
        raise KernelkitError(f"--port {args.port} is out of range", where="--port", hint="use 0 to 65535")
    server = make_server(args.host, args.port, cache_dir=args.cache or cache_dir("blobconverter"),
                         zoo_dir=args.zoo, jobs=args.jobs, log=log_to_stderr)
    host, port = server.server_address[:2]
    print(f"kernelkit serve: blobconverter protocol on http://{host}:{port} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
