"""The architecture, stated as tests (docs/ARCHITECTURE.md, "The map").

Imports point one way, dashboard -> learning -> memory; the learning math
imports no Django; harness code (simulations, benchmarks, drills) is driven
by management commands and tests, never imported by the product; and no two
of the project's modules import each other, directly or through others.
Every import counts, including those inside functions.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qefleet", "learning", "dashboard")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, name):
    """The project modules `path` (module `name`) imports, as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {imported for imported in found if imported.split(".")[0] in PACKAGES}


def project_graph():
    """{module: {project modules it imports}}, migrations left out."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
               if "migrations" not in path.parts}
    return {name: {imported for imported in imports_of(path, name) if imported in modules} - {name}
            for name, path in modules.items()}


GRAPH = project_graph()


def within(name, *packages):
    return any(name == package or name.startswith(package + ".") for package in packages)


def is_command(name):
    """Management commands: entry points a person or the scheduler runs; nothing imports them."""
    return ".management.commands." in name


def violations(graph, importer, forbidden, exempt=lambda name: False):
    return sorted(f"{name} imports {imported}" for name, imported_names in graph.items()
                  if within(name, *importer) and not exempt(name)
                  for imported in imported_names if within(imported, *forbidden))


def test_the_learning_math_imports_no_django():
    django = []
    for path in (ROOT / "learning" / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            django += [f"{module_name(path)} imports {name}" for name in names
                       if name.split(".")[0] in ("django", "ninja", "django_q", *PACKAGES)]
    assert django == []


def test_the_learning_math_imports_only_itself():
    outside = [line for line in violations(GRAPH, ["learning.core"], PACKAGES)
               if not line.split(" imports ")[1].startswith("learning.core")]
    assert outside == []


def test_memory_imports_neither_learning_nor_the_dashboard():
    assert violations(GRAPH, ["qefleet.memory"], ["learning", "dashboard"]) == []


def test_learning_does_not_import_the_dashboard():
    assert violations(GRAPH, ["learning"], ["dashboard"]) == []


def test_no_product_module_imports_the_harness():
    assert violations(GRAPH, PACKAGES, ["learning.harness"],
                      exempt=lambda name: within(name, "learning.harness") or is_command(name)) == []


def test_the_project_package_imports_the_apps_only_at_its_composition_root():
    """qefleet's own modules (settings, schedules, middleware, ...) import no
    app; api.py and urls.py compose the apps."""
    roots = ("qefleet.api", "qefleet.urls")
    assert violations(GRAPH, ["qefleet"], ["learning", "dashboard"], exempt=lambda name: name in roots) == []
    assert violations(GRAPH, ["qefleet"], ["qefleet.memory"],
                      exempt=lambda name: name in roots or within(name, "qefleet.memory")) == []


def cycles(graph):
    """Each import cycle once, as a list of modules (Tarjan's strongly connected components)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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


def package_graph(graph):
    """The same graph with a package's __init__ left out of its own modules'
    imports: `from . import x` names the package only to reach x."""
    return {name: {imported for imported in imported_names if not name.startswith(imported + ".")}
            for name, imported_names in graph.items()}


def test_no_two_modules_import_each_other():
    assert cycles(package_graph(GRAPH)) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_it_finds_import_cycles(graph, expected):
    assert cycles(graph) == expected


def test_it_sees_a_broken_rule():
    """The checks read real imports: a memory module importing learning, or
    the math importing Django, would be reported."""
    graph = {**GRAPH, "qefleet.memory.store": GRAPH["qefleet.memory.store"] | {"learning.models"}}
    assert violations(graph, ["qefleet.memory"], ["learning", "dashboard"]) == [
        "qefleet.memory.store imports learning.models"]
    assert "qefleet.memory.models" in GRAPH["qefleet.memory.store"]
