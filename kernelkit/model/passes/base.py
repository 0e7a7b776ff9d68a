"""What every pass shares: the pass interface, the context it edits, the record of changes, and the refusal
type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from kernelkit.facts.target import Target


@dataclass
class Change:
    """One edit to the model, as patch-report.json lists it."""

    patcher: str            # precision | version | rewrite | custom_layer | preprocess | ir
    layer: str              # the layer's name before the change
    before: str             # e.g. "SoftMax-8 axis=-1"
    after: str              # e.g. "SoftMax-1 axis=3"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Refusal:
    """A layer a patcher could have handled but would not, and why (listed in the report)."""

    patcher: str
    layer: str
    type: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


class Refuse(Exception):
    """Raised inside a patcher when semantics cannot be kept; becomes a Refusal."""


@dataclass
class PatchContext:
    model: object                 # kernelkit.ir.model.IRModel, edited in place
    target: Target
    changes: list[Change] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # compile_tool keys the patched model needs beyond the defaults (the patch folder's compile.conf)
    compile_options: dict[str, str] = field(default_factory=dict)

    def record(self, patcher: str, layer: str, before: str, after: str) -> None:
        self.changes.append(Change(patcher, layer, before, after))

    def refuse(self, patcher: str, layer, reason: str) -> None:
        self.refusals.append(Refusal(patcher, layer.name, f"{layer.type}-{version_number(layer.version)}", reason))


def _always(ctx: PatchContext) -> bool:
    return True


@dataclass(frozen=True)
class Pass:
    """One step of `patch`: `run(ctx)` edits ctx.model in place and records what it changed and refused in
    ctx; it runs only where `applies(ctx)`."""

    name: str
    run: Callable[[PatchContext], object]
    applies: Callable[[PatchContext], bool] = _always
    # Its errors are about the user's options, not the model: patch does not name the model in them.
    user_options: bool = False

    def apply(self, ctx: PatchContext) -> tuple[list[Change], list[Refusal]]:
        """Run the pass where it applies; the changes and refusals it recorded."""
        changes, refusals = len(ctx.changes), len(ctx.refusals)
        if self.applies(ctx):
            self.run(ctx)
        return ctx.changes[changes:], ctx.refusals[refusals:]


def version_number(version: str) -> str:
    """"opset8" -> "8"; other version strings (extension, experimental) unchanged."""
    return version[5:] if version.startswith("opset") else version


def describe(layer) -> str:
    return f"{layer.type}-{version_number(layer.version)}"
