"""The package's layers: every import between kernelkit modules, function-level ones included, goes down the
declared order or stays inside its layer, and no module imports itself back through others.

Importing `kernelkit.a.b` also runs the package `kernelkit.a`, so a package `__init__` counts as imported by each of
its modules' importers. The root `kernelkit/__init__.py` is the library API: it may import only inside functions
(lazily), so that `import kernelkit.core.errors` never loads the rest.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kernelkit"

# Lowest first. A module belongs to the layer of its longest listed prefix.
LAYERS = [
    ("core", ["kernelkit.core"]),
    ("facts", ["kernelkit.facts"]),
    ("ir", ["kernelkit.ir"]),
    ("kernel flow", ["kernelkit.kernel", "kernelkit.library"]),
    ("device", ["kernelkit.myriad"]),
    ("model flow", ["kernelkit.model"]),
    ("runners", ["kernelkit.runners"]),
    ("orchestration", ["kernelkit.harness", "kernelkit.doctor", "kernelkit.delivery"]),
    ("interface", ["kernelkit.api", "kernelkit.cli", "kernelkit.compat", "kernelkit.__main__", "kernelkit"]),
]


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every kernelkit import in `module`, at any depth of the file."""
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
                     for alias in node.names]
        for name in names:
            if name == "kernelkit" or name.startswith("kernelkit."):
                resolved = _resolve(name)
                if resolved and resolved != module:
                    found.append((resolved, node.lineno))
    return found


def _with_parents(target: str) -> list[str]:
    """The module and the packages Python runs to import it (the root, the lazy API, left out)."""
    parts = target.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in MODULES]


def import_graph() -> dict[str, dict[str, int]]:
    graph = {}
    for module in MODULES:
        edges = {}
        for target, line in imports_of(module):
            for each in _with_parents(target):
                if each != module and not module.startswith(each + "."):
                    edges.setdefault(each, line)
        graph[module] = edges
    return graph


def upward_imports() -> list[str]:
    found = []
    for module, edges in import_graph().items():
        for target, line in edges.items():
            if layer_of(target) > layer_of(module):
                found.append(f"{MODULES[module][0].relative_to(PACKAGE.parent)}:{line}: {module} "
                             f"({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    return sorted(found)


def import_circles() -> list[list[str]]:
    graph = import_graph()
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node):            # Tarjan's strongly connected components, iteratively deep enough for this package
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_upward_import():
    found = upward_imports()
    assert not found, "imports that go up the layers:\n" + "\n".join(found)


def test_no_import_circle():
    circles = import_circles()
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_api_root_imports_lazily():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    eager = [node.lineno for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
             and any((getattr(node, "module", None) or "").startswith("kernelkit") or node.level
                     or any(a.name.startswith("kernelkit") for a in node.names) for _ in [0])]
    assert not eager, f"kernelkit/__init__.py imports kernelkit modules at load time (lines {eager})"


def test_the_architecture_page_names_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(path.relative_to(PACKAGE)) for path, is_package in MODULES.values()
               if not is_package and f"`{path.relative_to(PACKAGE)}`" not in page]
    assert not missing, "docs/architecture.md has no row for: " + ", ".join(sorted(missing))


if __name__ == "__main__":      # a report while the layers are being fixed
    print("\n".join(upward_imports()))
    for circle in import_circles():
        print("circle:", " <-> ".join(circle))
