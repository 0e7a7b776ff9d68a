"""Write MYRIAD custom-layer bindings: canonical 2021/2022-dialect XML that myriad_read.loads reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape

from kernelkit import __version__
from kernelkit.kernel.bindings.model import CustomLayer, DataParam, Param, TensorParam

_ATTR_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}   # keep whitespace through parsing


def xml_attrs(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f' {k}="{escape(str(v), _ATTR_ESCAPES)}"' for k, v in pairs if v is not None)


def _param_xml(param: Param) -> str:
    if isinstance(param, TensorParam):
        pairs = [("arg-name", param.arg_name), ("type", param.type), ("port-index", param.port_index),
                 ("format", param.format)]
        if param.dim is not None:
            pairs += [("dim", param.dim), ("size", param.size)]
        return f"<Tensor{xml_attrs(pairs)}/>"
    if isinstance(param, DataParam):
        pairs = [("arg-name", param.arg_name), ("type", param.type)]
        pairs += [("source", param.source)] if param.type == "data" else [("dim", param.dim), ("size", param.size)]
        return f"<Data{xml_attrs(pairs)}/>"
    return f"<Scalar{xml_attrs([('arg-name', param.arg_name), ('type', param.type), ('port-index', param.port_index), ('source', param.source)])}/>"


def dumps(layers: Iterable[CustomLayer]) -> str:
    """Canonical 2021/2022-dialect XML: no wrapper root, one <CustomLayer> per alternative."""
    out = [f"<!-- MYRIAD custom-layer bindings (2021/2022 dialect), written by kernelkit {__version__} -->"]
    for layer in layers:
        multi = len(layer.kernels) > 1
        out.append(f"<CustomLayer{xml_attrs([('name', layer.name), ('type', 'MVCL'), ('version', 1), ('max-shaves', layer.layer_max_shaves)])}>")
        if layer.where:
            out.append(f"    <Where{xml_attrs(layer.where.items())}/>")
        for kernel in layer.kernels:
            pairs = [("entry", kernel.entry), ("stage", kernel.stage if multi else None),
                     ("max-shaves", kernel.max_shaves or None)]
            out.append(f"    <Kernel{xml_attrs(pairs)}>")
            out += [f"        <Source{xml_attrs([('filename', s)])}/>" for s in kernel.sources]
            out.append("        <Parameters>")
            out += [f"            {_param_xml(p)}" for p in kernel.params]
            out.append("        </Parameters>")
            ws = kernel.work_sizes
            out.append(f"        <WorkSizes{xml_attrs([('dim', ws.dim), ('global', ','.join(ws.global_)), ('local', ','.join(ws.local))])}/>")
            out.append("    </Kernel>")
        out.append("</CustomLayer>")
    return "\n".join(out) + "\n"


def save(layers: Iterable[CustomLayer], path: str | Path) -> Path:
    from kernelkit.core.fsutil import atomic_write

    return atomic_write(path, dumps(layers))
