"""Imports run downward only, and no module imports one that imports it back.

The apps are layered, lowest first (ARCHITECTURE.md names each one's room):

    core < marketing < experiments < modelling < jobs

A module may import its own app and the apps below it, plus the two pure
libraries (models_dl, experiments.stats). The apps' interface modules
(admin, api/, management commands) may also import ``jobs.requests``: the
one door through which people and beat ask for background work. Imports
inside functions count too: a lazy import is still a dependency.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "marketing", "experiments", "modelling", "jobs"]
LIBRARIES = {"models_dl"}
PACKAGES = [*LAYERS, *LIBRARIES, "config"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports (anywhere in the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        candidates = []
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for candidate in candidates:
            # The longest project module the name starts with.
            parts = candidate.split(".")
            for end in range(len(parts), 0, -1):
                prefix = ".".join(parts[:end])
                if prefix in known:
                    found.add(prefix)
                    break
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    if top == "experiments" and module.startswith("experiments.stats"):
        return None  # the pure statistics library
    return LAYERS.index(top) if top in LAYERS else None


def _is_interface(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and (parts[1] in {"admin", "api", "management"}
                               or parts[1].startswith("admin_"))


def test_every_app_imports_only_itself_and_the_apps_below_it():
    offenders = []
    for module, imported in _graph().items():
        own = _layer(module)
        if own is None:
            continue
        for target in imported:
            level = _layer(target)
            if level is None or level <= own:
                continue
            if _is_interface(module) and target == "jobs.requests":
                continue
            offenders.append(f"{module} -> {target}")
    assert sorted(offenders) == []


def test_marketing_imports_nothing_from_experiments():
    graph = _graph()
    assert sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith("marketing")
                  for t in targets if t.startswith("experiments")) == []


def test_the_libraries_import_no_app():
    graph = _graph()
    assert sorted(f"{m} -> {t}" for m, targets in graph.items()
                  if m.split(".")[0] in LIBRARIES or m.startswith("experiments.stats")
                  for t in targets if _layer(t) is not None) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_module_that_imports_it_back():
    # Packages' __init__ modules re-export their children (models_dl): an
    # edge from a child to its own package is how relative imports look.
    graph = defaultdict(set)
    for module, targets in _graph().items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
