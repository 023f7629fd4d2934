"""The package layout's rules (docs/ARCHITECTURE.md): no import cycles, imports only downwards.

Imports are read from the source (function-local ones included), so a rule broken in a rarely
run branch fails here too.
"""

import ast

import pytest

from tests.paths import REPO

PACKAGES = ("rar_keras", "datasets", "eval", "export", "tools")
MAX_TOP_LEVEL_MODULES = 10

# (importer prefix, forbidden prefixes): what each part of the product must not know.
RULES = (
    ("datasets", ("rar_keras", "eval", "export", "tools")),
    ("eval.metrics", ("rar_keras", "export", "tools", "eval.models", "eval.runner", "eval.study")),
    ("eval.report", ("rar_keras", "export", "tools")),
    ("eval.plots", ("rar_keras", "export", "tools")),
    ("eval", ("export", "tools")),
    ("export", ("eval.runner", "eval.models", "eval.study", "tools")),
    ("rar_keras", ("eval", "export", "tools")),
    ("rar_keras.utils", ("rar_keras.layers", "rar_keras.backbones", "rar_keras.models", "rar_keras.training",
                         "rar_keras.inference", "rar_keras.detectors", "rar_keras.presets")),
    ("rar_keras.layers", ("rar_keras.backbones", "rar_keras.models", "rar_keras.training", "rar_keras.inference",
                          "rar_keras.detectors", "rar_keras.presets")),
    ("rar_keras.backbones", ("rar_keras.layers", "rar_keras.models", "rar_keras.training", "rar_keras.inference",
                             "rar_keras.detectors", "rar_keras.presets")),
    ("rar_keras.presets", ("rar_keras.models", "rar_keras.training", "rar_keras.inference",
                           "rar_keras.detectors", "rar_keras.layers", "rar_keras.backbones")),
    ("rar_keras.detectors", ("rar_keras.models", "rar_keras.training", "rar_keras.inference",
                             "rar_keras.presets", "rar_keras.layers", "rar_keras.backbones", "tensorflow", "keras")),
    ("rar_keras.models", ("rar_keras.inference", "rar_keras.detectors")),
    ("rar_keras.inference", ("rar_keras.training",)),
)


def _module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path, module: str, is_package: bool) -> set[str]:
    """Every module name `path` imports, at any depth of the file."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """{module: the project modules and third-party names it imports}."""
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    edges = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(path, module, path.name == "__init__.py"):
            resolved = name
            while resolved and resolved not in modules:
                resolved = resolved.rpartition(".")[0]
            if resolved:
                # A module importing its own package (for a sibling) is no dependency on itself.
                if resolved != module and not module.startswith(resolved + "."):
                    targets.add(resolved)
            else:
                targets.add(name.split(".")[0])       # third party: its top-level name
        edges[module] = targets
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_follow_the_dependency_rules(graph):
    broken = [f"{module} imports {target}" for module, targets in sorted(graph.items())
              for prefix, forbidden in RULES if _within(module, prefix)
              for target in sorted(targets) if any(_within(target, f) for f in forbidden)]
    assert broken == []


def test_nothing_outside_tools_imports_tools(graph):
    assert [m for m, targets in graph.items() if not _within(m, "tools") and any(_within(t, "tools") for t in targets)] == []


def test_few_modules_directly_in_rar_keras():
    modules = sorted(p.name for p in (REPO / "rar_keras").glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
