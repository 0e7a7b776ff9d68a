"""Run by the legacy toolchain's Python 3.9 (openvino 2021.4.2): MYRIAD query_network for a list of models.

usage:  python3.9 query_network.py RESULT.json  < request.json
stdin:  JSON {"config": {KEY: VALUE}, "models": [path, ...]}
RESULT.json (not stdout: the plugin prints its warnings there): JSON list, one entry per model, in order:
        {"model", "ok", "error", "layers": [[name, type], ...], "supported": {name: device}, "seconds"}
query_network needs no device; it runs the nGraph passes and the layer parsers but not the stage type
checks, so a real compile can still refuse what it accepts.
"""
import json
import sys
import time

from openvino.inference_engine import IECore


def query(core, model, config):
    start = time.monotonic()
    entry = {"model": model, "ok": False, "error": "", "layers": [], "supported": {}}
    try:
        network = core.read_network(model=model)
        try:
            import ngraph

            function = ngraph.function_from_cnn(network)
            entry["layers"] = [[op.get_friendly_name(), op.get_type_name()] for op in function.get_ordered_ops()]
        except Exception as exc:  # the layer list only completes the report
            entry["error"] = "cannot list layers: %s" % exc
        entry["supported"] = core.query_network(network, "MYRIAD", config)
        entry["ok"] = True
    except Exception as exc:
        entry["error"] = str(exc)
    entry["seconds"] = time.monotonic() - start
    return entry


def main():
    request = json.load(sys.stdin)
    core = IECore()
    results = [query(core, model, request.get("config") or {}) for model in request["models"]]
    with open(sys.argv[1], "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
