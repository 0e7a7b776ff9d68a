"""A drop-in for Luxonis' `blobconverter` client (PyPI 1.4.3) that needs no network: the same functions,
arguments and defaults, answered by kernelkit's patch and the 2021.4 MYRIAD compiler on this machine.

    import kernelkit.compat.blobconverter as blobconverter
    blob_path = blobconverter.from_onnx("model.onnx", shaves=6)

Differences, on purpose: the cache is keyed by content (model bytes and parameters), so a re-exported model
under the same name is compiled again; unsupported layers are patched on the way (kernelkit patch); a version
kernelkit cannot compile (2022.1, 2022.3) is compiled by 2021.4 and said so with a VersionWarning; `url` is
accepted and not contacted; parameters kernelkit cannot honour are a KernelkitError naming them.
"""

from __future__ import annotations

import os
from pathlib import Path

from kernelkit.compat.conversion import VersionWarning, make_plan
from kernelkit.core.errors import KernelkitError


class Versions:
    v2022_3_RVC3 = "2022.3_RVC3"
    v2022_1 = "2022.1"
    v2021_4 = "2021.4"
    v2021_3 = "2021.3"
    v2021_2 = "2021.2"


def _show_progress(curr, max):          # noqa: A002 - the client's signature
    pass


_defaults = {
    "url": "https://blobconverter.luxonis.com",
    "version": Versions.v2022_1,
    "shaves": 4,
    "output_dir": Path.home() / ".cache" / "blobconverter",
    "compile_params": ["-ip U8"],
    "data_type": "FP16",
    "optimizer_params": ["--mean_values=[127.5,127.5,127.5]", "--scale_values=[255,255,255]"],
    "progress_func": _show_progress,
    "silent": False,
    "zoo_type": "intel",
    "zoo_dir": None,                    # kernelkit: the local zoo folder from_zoo reads (else $KERNELKIT_ZOO_DIR)
}
CACHE_FOLDER = ".kernelkit-cache"       # inside output_dir: content-keyed blobs


def set_defaults(url=None, version=None, shaves=None, output_dir=None, compile_params: list = None,
                 optimizer_params: list = None, data_type=None, silent=None, zoo_type=None, progress_func=None,
                 zoo_dir=None):
    """As blobconverter's; `zoo_dir` (kernelkit) sets the local zoo folder."""
    given = dict(url=url, version=version, shaves=shaves, output_dir=output_dir, compile_params=compile_params,
                 optimizer_params=optimizer_params, data_type=data_type, silent=silent, zoo_type=zoo_type,
                 progress_func=progress_func, zoo_dir=zoo_dir)
    _defaults.update({k: v for k, v in given.items() if v is not None})


def is_valid_blob(blob_path) -> bool:
    from kernelkit.myriad.blob import read_header

    try:
        read_header(Path(blob_path))
        return True
    except KernelkitError:
        return False


def _local(path, what: str) -> Path:
    if str(path).startswith(("http://", "https://")):
        raise KernelkitError(f"{what} {path} is a URL: kernelkit converts offline", where=what,
                             hint="download the file and pass its path")
    path = Path(path)
    if not path.is_file():
        raise KernelkitError(f"{what} not found", path=path, hint="pass the path of the model file")
    return path


def compile_blob(blob_name, version=None, shaves=None, req_data=None, req_files=None, output_dir=None, url=None,
                 use_cache=True, compile_params=None, data_type=None, download_ir=False, zoo_type=None, dry=False):
    """blobconverter's raw call: `req_files` holds "config" (the model's YAML: framework, files,
    model_optimizer_args) and the model files by name; `req_data` the form fields (name, use_zoo)."""
    from kernelkit.compat.miniyaml import loads

    req_data, req_files = dict(req_data or {}), dict(req_files or {})
    if str(req_data.get("use_zoo", "")).lower() == "true" and "config" not in req_files:
        return from_zoo(req_data.get("name", blob_name), version=version, shaves=shaves, output_dir=output_dir,
                        url=url, use_cache=use_cache, compile_params=compile_params, data_type=data_type,
                        download_ir=download_ir, zoo_type=zoo_type, dry=dry)
    if "config" not in req_files:
        raise KernelkitError("req_files has no 'config' (the model's YAML description)", where="req_files",
                             hint="use from_onnx / from_openvino, or pass the config YAML as req_files['config']")
    config_path = _local(req_files.pop("config"), "config")
    config = loads(config_path.read_text(errors="replace"), source=str(config_path))
    if not isinstance(config, dict):
        raise KernelkitError("the config YAML is not a mapping", path=config_path)
    files = {name: _local(p, "model file") for name, p in req_files.items()}
    args = config.get("model_optimizer_args") or []
    return _convert(blob_name, str(config.get("framework", "")), files, args, version=version, shaves=shaves,
                    output_dir=output_dir, use_cache=use_cache, compile_params=compile_params, data_type=data_type,
                    download_ir=download_ir, dry=dry)


def _convert(blob_name, framework, files, optimizer_params, *, version=None, shaves=None, output_dir=None,
             use_cache=True, compile_params=None, data_type=None, download_ir=False, dry=False, url=None,
             zoo_type=None, **unknown):
    from kernelkit.compat.conversion import convert, warn_notes
    from kernelkit.core.fsutil import atomic_write

    if unknown:
        raise KernelkitError(f"unexpected argument(s) {', '.join(sorted(unknown))}", where="blobconverter",
                             hint="blobconverter 1.4.3's arguments are taken; see help(kernelkit.compat.blobconverter)")
    if download_ir:
        raise KernelkitError("download_ir is not offered: the IR is kernelkit's patched model", where="download_ir",
                             hint="run `kernelkit patch MODEL -o FOLDER` to get the patched IR")
    version = _defaults["version"] if version is None else version
    shaves = _defaults["shaves"] if shaves is None else shaves
    output_dir = Path(_defaults["output_dir"] if output_dir is None else output_dir)
    compile_params = _defaults["compile_params"] if compile_params is None else compile_params
    data_type = _defaults["data_type"] if data_type is None else data_type
    if isinstance(compile_params, str) or isinstance(optimizer_params, str):
        raise KernelkitError("optimizer_params and compile_params are lists of strings", where="blobconverter",
                             hint='e.g. compile_params=["-ip U8"]')
    plan = make_plan(version=version, shaves=shaves, data_type=data_type, optimizer_params=optimizer_params,
                     compile_params=compile_params)
    if dry:
        return {"framework": framework, "files": sorted(files), "plan": plan.key_fields(), "notes": plan.notes}
    blob_path = output_dir / f"{blob_name}_openvino_{version}_{shaves}shave.blob"
    result = convert(files, framework, plan, cache_dir=output_dir / CACHE_FOLDER, use_cache=bool(use_cache))
    warn_notes(result.notes)
    atomic_write(blob_path, result.blob)
    return blob_path


def from_onnx(model, data_type=None, optimizer_params=None, model_size=None, model_sha256=None, **kwargs):
    model = _local(model, "model")
    params = _defaults["optimizer_params"] if optimizer_params is None else optimizer_params
    data_type = _defaults["data_type"] if data_type is None else data_type
    return _convert(model.stem, "onnx", {model.name: model}, list(params), data_type=data_type, **kwargs)


def from_tf(frozen_pb, data_type=None, optimizer_params=None, frozen_pb_size=None, frozen_pb_sha256=None,
            **kwargs):
    model = _local(frozen_pb, "frozen_pb")
    params = _defaults["optimizer_params"] if optimizer_params is None else optimizer_params
    data_type = _defaults["data_type"] if data_type is None else data_type
    return _convert(model.stem, "tf", {model.name: model}, list(params), data_type=data_type, **kwargs)


def from_caffe(proto, model, data_type=None, optimizer_params=None, proto_size=None, proto_sha256=None,
               model_size=None, model_sha256=None, **kwargs):
    raise KernelkitError("Caffe models cannot be read: OpenVINO dropped its Caffe frontend in 2023",
                         path=Path(str(proto)), hint="export the model to ONNX and use from_onnx")


def from_openvino(xml, bin, xml_size=None, xml_sha256=None, bin_size=None, bin_sha256=None, **kwargs):  # noqa: A002
    xml, weights = _local(xml, "xml"), _local(bin, "bin")
    if weights.resolve() != xml.with_suffix(".bin").resolve():
        raise KernelkitError(f"the weights {weights.name} must sit beside the IR as {xml.with_suffix('.bin').name}",
                             path=weights, hint="keep the .bin beside the .xml with the same stem")
    # The client sends no optimizer params with an IR: it is converted already.
    return _convert(xml.stem, "dldt", {xml.name: xml, weights.name: weights}, [], **kwargs)


def _zoo_dir(zoo_dir=None) -> Path:
    folder = zoo_dir or _defaults["zoo_dir"] or os.environ.get("KERNELKIT_ZOO_DIR")
    if not folder:
        raise KernelkitError("no local zoo folder", where="from_zoo",
                             hint="pass zoo_dir=FOLDER, call set_defaults(zoo_dir=FOLDER) or set KERNELKIT_ZOO_DIR; "
                                  "FOLDER/NAME/ holds the model files (and optionally model.yml)")
    folder = Path(folder)
    if not folder.is_dir():
        raise KernelkitError("the zoo folder is not a folder", path=folder)
    return folder


def zoo_entry(zoo: Path, name: str):
    """(framework, files, model_optimizer_args) of the zoo model `name`: a folder zoo/NAME holding one .onnx
    (or an .xml + .bin, or a .pb) and optionally model.yml (Open Model Zoo-style: framework,
    model_optimizer_args)."""
    from kernelkit.compat.conversion import MODEL_SUFFIXES, plain_name
    from kernelkit.compat.miniyaml import loads
    from kernelkit.core.fsutil import named_file

    plain_name(name, "zoo model name", "name")
    folder = zoo / name
    if not folder.is_dir():
        known = ", ".join(zoo_names(zoo)[:20]) or "(none)"
        raise KernelkitError(f"no model {name!r} in the local zoo", path=zoo, hint=f"models: {known}")
    config = {}
    for yml in ("model.yml", "config.yml"):
        path = named_file(folder, yml, source=folder, where="zoo", missing_ok=True)
        if path is not None:
            config = loads(path.read_text(errors="replace"), source=str(path)) or {}
            break
    if not isinstance(config, dict):
        raise KernelkitError("model.yml is not a mapping", path=folder)
    files = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}
    framework = str(config.get("framework") or "")
    if not framework:
        by_suffix = {s: f for f, suffixes in MODEL_SUFFIXES.items() for s in suffixes}
        kinds = {by_suffix[Path(n).suffix.lower()] for n in files if Path(n).suffix.lower() in by_suffix}
        framework = kinds.pop() if len(kinds) == 1 else ""
        if not framework:
            raise KernelkitError(f"zoo model {name!r}: cannot tell its framework from {sorted(files)}", path=folder,
                                 hint="keep one model in the folder, or write `framework: onnx` in model.yml")
    return framework, files, list(config.get("model_optimizer_args") or [])


def zoo_names(zoo: Path) -> list[str]:
    return sorted(p.name for p in zoo.iterdir() if p.is_dir() and not p.name.startswith("."))


def from_zoo(name, zoo_dir=None, **kwargs):
    """A model of the local zoo folder (`zoo_dir`, set_defaults(zoo_dir=) or $KERNELKIT_ZOO_DIR): FOLDER/NAME/
    with the model files and optionally model.yml. Errors are raised as they are (no silent backup)."""
    framework, files, args = zoo_entry(_zoo_dir(zoo_dir), str(name))
    return _convert(str(name), framework, files, args, **kwargs)


def from_config(name, path, **kwargs):
    return compile_blob(name, req_data={"name": name}, req_files={"config": path}, **kwargs)


def zoo_list(version=None, url=None, zoo_type="intel", zoo_dir=None):
    return zoo_names(_zoo_dir(zoo_dir))


__all__ = ["Versions", "VersionWarning", "set_defaults", "compile_blob", "from_onnx", "from_tf", "from_caffe",
           "from_openvino", "from_zoo", "from_config", "zoo_list", "is_valid_blob"]
