"""What the MYRIAD plugin of each target release accepts, loaded from the TOML tables in `data/`.

The tables are the knowledge; this module only reads and indexes them (kernelkit.model.blockers applies them).
Every row carries its source. For the target whose real plugin kernelkit runs, that plugin's verdicts on one-op
probe models (`data/plugin-verdicts-<target>.json`, written by toolchain/probe_support.py) outrank the tables:
they decide op support and which input element types a stage accepts, and the row's source says "plugin verdict".
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.plugin_messages import INPUT_TYPE_EXPECTED, UNSUPPORTED_LAYER_TYPE
from kernelkit.facts.target import Target, compiler_target, dynamic_shapes, get_target, target_names

DATA_DIR = Path(__file__).parent / "data"
_OPSET = re.compile(r"opset(\d+)$")


@dataclass(frozen=True)
class OpRule:
    type: str
    supported: bool
    versions: tuple[int, ...] | None
    source: str


@dataclass(frozen=True)
class Limit:
    op: str
    check: str
    params: dict
    reason: str
    source: str


@dataclass(frozen=True)
class PrecisionRule:
    name: str
    ops: frozenset[str]
    accepts: frozenset[str]
    ports: tuple[int, ...] | None
    source: str


@dataclass
class Knowledge:
    target: Target                              # its reader's facts (opsets, IR versions...) are the Target's
    ops: dict[str, OpRule]                      # canonical op type -> rule
    aliases: dict[str, str]                     # lower-case spelling -> canonical op type
    limits: dict[str, list[Limit]]              # canonical op type -> limits
    precision_rules: dict[str, list[PrecisionRule]]
    effective_types: dict[str, str]             # element type -> FP16 / S32 / U8
    io_inputs: frozenset[str]
    io_outputs: frozenset[str]
    convert_pairs: frozenset[tuple[str, str]]
    dynamic_shapes: dict
    evidence: dict[str, "VerdictEvidence"] = field(default_factory=dict)   # the real plugin's word, if it runs
    sources: dict[str, str] = field(default_factory=dict)   # topic -> source, for reports

    @property
    def opset_ceiling(self) -> int:
        return self.target.opset_ceiling

    @property
    def ir_versions(self) -> tuple[int, ...]:
        return self.target.ir_versions

    @property
    def custom_layers_key(self) -> str:
        return self.target.custom_layers_key

    @property
    def unique_layer_names(self) -> bool:
        return self.target.unique_layer_names

    @property
    def static_dims(self) -> bool:
        """The reader refuses -1 dims anywhere, not only on inputs."""
        return self.target.static_dims

    def canonical(self, op_type: str) -> str:
        """The opset name of an IR layer type (ReLU -> Relu, SoftMax -> Softmax), case-insensitive."""
        return self.aliases.get(op_type.lower(), op_type)

    def op_rule(self, op_type: str) -> OpRule | None:
        return self.ops.get(self.canonical(op_type))

    def effective_type(self, element_type: str | None) -> str | None:
        return self.effective_types.get(element_type or "")

    @staticmethod
    def opset_number(version: str) -> int | None:
        """7 for "opset7"; None for non-opset domains (extension, experimental...)."""
        match = _OPSET.match(version or "")
        return int(match.group(1)) if match else None


def _targets_of(value, where: str) -> tuple[str, ...]:
    if value == "all":
        return target_names()
    if isinstance(value, list) and all(v in target_names() for v in value):
        return tuple(value)
    raise KernelkitError(f"targets must be \"all\" or a list of {', '.join(target_names())}", where=where,
                         path=DATA_DIR / "ops.toml")


def _read_toml(name: str) -> dict:
    path = DATA_DIR / name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KernelkitError(f"cannot read the knowledge base: {exc}", path=path) from None


def verdicts_file() -> Path:
    """toolchain/probe_support.py's record of the real plugin's verdicts (the compiler target's)."""
    return DATA_DIR / f"plugin-verdicts-{compiler_target().name}.json"


@dataclass
class VerdictEvidence:
    """What the real plugin said about one op type in toolchain/probe_support.py's probes."""

    supported: bool | None = None                     # None: the probes do not settle it
    support_source: str = ""
    accepted: dict[str, str] = field(default_factory=dict)                 # effective type -> source
    rejected: dict[tuple[int, str], tuple[tuple[str, ...], str]] = field(default_factory=dict)
    # (input index, effective type) -> (types the stage accepts, source)


def plugin_verdicts() -> list[dict]:
    """The rows of verdicts_file() ({"op", "version", "variant", "verdict", "message"}),
    or [] when the probes have not been run."""
    path = verdicts_file()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KernelkitError(f"cannot read the plugin verdicts: {exc}", path=path) from None
    rows = data.get("verdicts", []) if isinstance(data, dict) else []
    return [r for r in rows if isinstance(r, dict) and {"op", "version", "variant", "verdict"} <= set(r)]


def verdict_evidence(rows: list[dict], effective: dict[str, str]) -> dict[str, VerdictEvidence]:
    """Fold probe rows into per-op evidence.

    - any compiled probe: the op is supported; every probe refused and one of them for an
      `unsupported layer type` (the op itself or a layer its decomposition needs): unsupported;
    - a compiled probe whose variant is an element type (f16, i32, boolean): inputs of that type pass;
    - a refusal "input #k has type T, but one of [...] is expected": input k of type T is rejected.
    Other refusals concern one form of the op (attributes, rank) and are left to limits.toml.
    """
    evidence: dict[str, VerdictEvidence] = {}
    for row in rows:
        ev = evidence.setdefault(row["op"], VerdictEvidence())
        label = f"plugin verdict: {row['op']}-{row['version'].replace('opset', '')} ({row['variant']}) {row['verdict']}"
        message = row.get("message") or ""
        if row["verdict"] == "compiled":
            ev.supported, ev.support_source = True, label
            if row["variant"] in effective:
                ev.accepted.setdefault(effective[row["variant"]], label)
        elif row["verdict"] == "refused":
            unsupported = UNSUPPORTED_LAYER_TYPE.search(message)
            if unsupported and ev.supported is None:
                ev.supported, ev.support_source = False, f"{label}: {unsupported['reason']}"
            for index, found, accepts in INPUT_TYPE_EXPECTED.pattern.findall(message):
                ev.rejected[(int(index), found)] = (tuple(a.strip() for a in accepts.split(",") if a.strip()),
                                                    f"{label}: {INPUT_TYPE_EXPECTED.search(message).group(0)}")
    return evidence


def load_knowledge(target: str | Target) -> Knowledge:
    """The knowledge base of a Target (or of a target name, which must be known)."""
    return _load(get_target(target))


@lru_cache(maxsize=None)
def _load(target: Target) -> Knowledge:
    ops_doc = _read_toml("ops.toml")
    limits_doc = _read_toml("limits.toml")
    precision_doc = _read_toml("precision.toml")

    effective = {k: v for k, v in precision_doc["effective"].items() if k != "source"}
    evidence = verdict_evidence(plugin_verdicts(), effective) if target.compiler else {}
    ops = {}
    for op_type, row in ops_doc["ops"].items():
        supported = target.name in _targets_of(row["targets"], f"ops.{op_type}")
        source = row["source"]
        versions = tuple(row["versions"]) if "versions" in row else None
        ev = evidence.get(op_type)
        if ev is not None and ev.supported is not None:
            supported, source = ev.supported, ev.support_source
        ops[op_type] = OpRule(op_type, supported, versions, source)
    for op_type, ev in evidence.items():
        if op_type not in ops and ev.supported is not None:
            ops[op_type] = OpRule(op_type, ev.supported, None, ev.support_source)
    aliases = {name.lower(): name for name in ops}
    aliases.update({alias.lower(): name for alias, name in ops_doc.get("aliases", {}).items()})

    limits: dict[str, list[Limit]] = {}
    for row in limits_doc["limit"]:
        if target.name not in row.get("targets", target_names()):
            continue
        params = {k: v for k, v in row.items() if k not in ("op", "check", "reason", "source", "targets")}
        limits.setdefault(row["op"], []).append(Limit(row["op"], row["check"], params, row["reason"],
                                                      row["source"]))

    rules: dict[str, list[PrecisionRule]] = {}
    for row in precision_doc["rule"]:
        rule = PrecisionRule(row["name"], frozenset(row["ops"]), frozenset(row["accepts"]),
                             tuple(row["ports"]) if "ports" in row else None, row["source"])
        for op_type in rule.ops:
            rules.setdefault(op_type, []).append(rule)

    return Knowledge(
        target=target,
        ops=ops, aliases=aliases, limits=limits, precision_rules=rules,
        effective_types=effective,
        io_inputs=frozenset(precision_doc["io"]["inputs"]),
        io_outputs=frozenset(precision_doc["io"]["outputs"]),
        convert_pairs=frozenset(tuple(p) for p in precision_doc["convert"]["pairs"]),
        dynamic_shapes=dynamic_shapes(),
        evidence=evidence,
        sources={"target": target.sources["source"], "opset": target.sources["opset_source"],
                 "ir-version": target.sources["ir_version_source"], "reader": target.sources["reader_source"],
                 "effective": precision_doc["effective"]["source"],
                 "io": precision_doc["io"]["source"], "convert": precision_doc["convert"]["source"],
                 "dynamic": dynamic_shapes()["source"]},
    )


# The IR version of an extension layer: a layer of any type that the 2021.4 plugin, run by the toolchain's
# shim, creates as a FrameworkNode of that type and binds to a custom layer by name, whether or not an
# opset of 2021.4 has the op (toolchain/myriad_shim/framework_layers.cpp). Only that shim compiles them
# (Target.extension_layers): the stock compile_tool refuses the node in its legacy conversion.
EXTENSION_LAYER_VERSION = "extension"


@dataclass(frozen=True)
class CustomLayerFacts:
    """What the real 2021.4 plugin does with bindings of particular op types (data/custom-layers.toml)."""

    decomposed: dict[str, str]                   # op type -> how the plugin replaces it before binding
    absorbed_inputs: dict[str, dict[int, str]]   # op type -> {input port: the parameter it becomes}
    rank2_inputs: dict[str, tuple[int, ...]]     # op type -> rank-0/1 input ports the reader takes as [1, N]
    legacy_layers: dict[str, dict] = field(default_factory=dict)    # op type -> {type, set, drop, rename}
    blob_inputs: dict[str, dict[int, str]] = field(default_factory=dict)  # op type -> {input port: blob name}
    bool_attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # op type -> {attr: word | digit}
    extension_only: dict[str, str] = field(default_factory=dict)  # op type -> why no opset layer of 2021.4 has it
    extension_refused: dict[str, str] = field(default_factory=dict)   # op type -> why its extension layer fails
    extension_keeps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # op type -> attributes kept

    def _get(self, table: dict, op_type: str, default):
        return next((v for k, v in table.items() if k.lower() == op_type.lower()), default)

    def decomposed_by_plugin(self, op_type: str) -> str | None:
        return self._get(self.decomposed, op_type, None)

    def reader_lacks(self, op_type: str) -> str | None:
        """Why no opset layer of this type reaches the 2021.4 plugin (its reader has no such op), or None."""
        return self._get(self.extension_only, op_type, None)

    def extension_layer_refusal(self, op_type: str) -> str | None:
        """Why the plugin refuses an extension layer of this type (its own conversion takes it over), or None."""
        return self._get(self.extension_refused, op_type, None)

    def extension_layer_attrs(self, op_type: str, attrs: dict) -> dict:
        """The attributes an extension layer of this type keeps through the plugin's conversion."""
        keeps = self._get(self.extension_keeps, op_type, None)
        return dict(attrs) if keeps is None else {k: v for k, v in attrs.items() if k in keeps}

    def needs_extension_layer(self, op_type: str) -> str | None:
        """Why a binding for this type is reached only through an extension layer (no 2021.4 opset has the
        op, or the plugin replaces the opset op before it looks for a binding), or None."""
        return self.reader_lacks(op_type) or self.decomposed_by_plugin(op_type)

    def absorbed(self, op_type: str) -> dict[int, str]:
        return self._get(self.absorbed_inputs, op_type, {})

    def blobs(self, op_type: str) -> dict[int, str]:
        return self._get(self.blob_inputs, op_type, {})

    def not_inputs(self, op_type: str) -> set[int]:
        """Input ports of the IR op that are no inputs of the legacy layer (parameters or blobs now)."""
        return set(self.absorbed(op_type)) | set(self.blobs(op_type))

    def reshapable(self, op_type: str) -> tuple[int, ...]:
        return self._get(self.rank2_inputs, op_type, ())

    def legacy_type(self, op_type: str) -> str:
        """The legacy layer type a binding for this op must name."""
        return self._get(self.legacy_layers, op_type, {}).get("type", op_type)

    def legacy_attrs(self, op_type: str, attrs: dict) -> dict:
        """The op's attributes as the legacy layer holds them: renamed, dropped, added."""
        table = self._get(self.legacy_layers, op_type, {})
        bools = self._get(self.bool_attributes, op_type, {})
        out = {}
        for key, value in attrs.items():
            if key in table.get("drop", {}) and str(value).lower() == str(table["drop"][key]).lower():
                continue
            if key in bools and str(value).strip().lower() in ("true", "false", "1", "0"):
                truth = str(value).strip().lower() in ("true", "1")
                value = ("1" if truth else "0") if bools[key] == "digit" else ("true" if truth else "false")
            out[table.get("rename", {}).get(key, key)] = value
        out.update(table.get("set", {}))
        return out


@lru_cache(maxsize=None)
def custom_layer_facts() -> CustomLayerFacts:
    doc = _read_toml("custom-layers.toml")
    try:
        absorbed = {op: {int(port): str(name) for port, name in table.items()}
                    for op, table in doc.get("absorbed_inputs", {}).items()}
        blobs = {op: {int(port): str(name) for port, name in table.items()}
                 for op, table in doc.get("blob_inputs", {}).items()}
        reshapable = {op: tuple(int(p) for p in ports) for op, ports in doc.get("rank2_inputs", {}).items()}
        legacy = {op: {"type": str(table["type"]), **{k: dict(table.get(k, {})) for k in ("set", "drop", "rename")}}
                  for op, table in doc.get("legacy_layers", {}).items()}
        bools = {op: {str(k): str(v) for k, v in table.items()} for op, table in doc.get("bool_attributes", {}).items()}
        if any(v not in ("word", "digit") for table in bools.values() for v in table.values()):
            raise ValueError("bool_attributes values are 'word' or 'digit'")
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise KernelkitError(f"malformed table: {exc}", path=DATA_DIR / "custom-layers.toml") from None
    return CustomLayerFacts(dict(doc.get("decomposed", {})), absorbed, reshapable, legacy, blobs, bools,
                            {str(k): str(v) for k, v in doc.get("extension_only", {}).items()},
                            {str(k): str(v) for k, v in doc.get("extension_refused", {}).items()},
                            {str(k): tuple(str(a) for a in v) for k, v in doc.get("extension_keeps", {}).items()})


def legacy_params(op_type: str, attrs: dict, const_inputs: dict) -> dict:
    """The layer's parameters as the plugin's legacy conversion gives them to a binding: its attributes
    (renamed, dropped and added as the op's legacy layer does), plus the constant inputs the conversion
    absorbs (HardSigmoid's alpha and beta as numbers, Transpose's order as a list)."""
    import numpy as np

    facts = custom_layer_facts()
    params = facts.legacy_attrs(op_type, dict(attrs))
    for port, name in facts.absorbed(op_type).items():
        value = const_inputs.get(port)
        if value is None:
            continue
        flat = np.asarray(value, dtype=np.float64).reshape(-1)
        if flat.size == 1:
            params.setdefault(name, float(flat[0]))
        elif np.all(flat == np.round(flat)):
            params.setdefault(name, ",".join(str(int(v)) for v in flat))
    return params


def support_markdown() -> str:
    """docs/myriad-support.md, generated from the tables (tests keep the committed copy in sync)."""
    kbs = [load_knowledge(t) for t in target_names()]
    probed = load_knowledge(compiler_target())
    compiled = probed.target.name
    lines = ["# MYRIAD support by target (generated from kernelkit/facts/data/*.toml)", "",
             "Regenerate with `python -c \"from kernelkit.facts.knowledge import support_markdown as s; "
             "print(s(), end='')\" > docs/myriad-support.md`. \"ref §x\" points at the research notes "
             "(ir-and-myriad-support.md); \"(d)\" rows are derived from plugin passes and need the oracle "
             f"to confirm. For {compiled} the real plugin's verdicts on one-op probes "
             f"(data/{verdicts_file().name}, docs/myriad-plugin-verdicts.md) outrank the tables: the last "
             "column names the probe that decided.", "",
             "## IR readers", "",
             "| target | IR versions | newest opset | unique layer names | custom-layer config key |",
             "|---|---|---|---|---|"]
    for kb in kbs:
        lines.append(f"| {kb.target.name} | {', '.join(map(str, kb.ir_versions))} | opset{kb.opset_ceiling} | "
                     f"{'required' if kb.unique_layer_names else 'not checked'} | `{kb.custom_layers_key}` |")
    lines += ["", f"Dynamic shapes: not supported on any target ({kbs[0].dynamic_shapes['source']}).", "",
              "## Operations", "",
              "An op type missing from this table is treated as unsupported. Versions: op versions "
              "(`version=\"opsetN\"`) MYRIAD handles, still capped by the target's opset.", "",
              "| op | versions | " + " | ".join(kb.target.name for kb in kbs) +
              f" | source (tables) | real {compiled} plugin |",
              "|---|---|" + "---|" * len(kbs) + "---|---|"]
    ops_doc = _read_toml("ops.toml")["ops"]
    for op_type in sorted(set().union(*(kb.ops for kb in kbs)), key=str.lower):
        rules = [kb.ops.get(op_type) for kb in kbs]
        table = ops_doc.get(op_type, {})
        versions = ", ".join(map(str, table["versions"])) if "versions" in table else "all"
        marks = " | ".join("yes" if r and r.supported else "no" for r in rules)
        probe = probed.ops[op_type].source if probed.ops[op_type].source.startswith("plugin verdict") else ""
        probe = probe.replace("plugin verdict: ", "").replace("|", "\\|")
        lines.append(f"| {op_type} | {versions} | {marks} | {table.get('source', '(not in ops.toml)')} | {probe} |")
    lines += ["", "## Limits (all targets)", "", "| op | check | parameters | reason | source |", "|---|---|---|---|---|"]
    for op_type in sorted(kbs[0].limits):
        for limit in kbs[0].limits[op_type]:
            params = ", ".join(f"{k}={v}" for k, v in limit.params.items())
            lines.append(f"| {op_type} | {limit.check} | {params} | {limit.reason} | {limit.source} |")
    kb = kbs[0]
    lines += ["", "## Precision", "",
              "Element types as MYRIAD sees them: " +
              ", ".join(f"{k} → {v}" for k, v in kb.effective_types.items()) +
              "; any other element type blocks the model. " + f"({kb.sources['effective']})", "",
              "Convert pairs: " + ", ".join(f"{a}→{b}" for a, b in sorted(kb.convert_pairs)) +
              f" ({kb.sources['convert']}).", "",
              "| rule | ops | inputs checked | accepted | source |", "|---|---|---|---|---|"]
    seen = set()
    for rules in kb.precision_rules.values():
        for rule in rules:
            if rule.name in seen:
                continue
            seen.add(rule.name)
            ports = ", ".join(map(str, rule.ports)) if rule.ports else "all"
            lines.append(f"| {rule.name} | {', '.join(sorted(rule.ops))} | {ports} | "
                         f"{', '.join(sorted(rule.accepts))} | {rule.source} |")
    return "\n".join(lines) + "\n"
