"""The packages' import graph, read from the source (only the engine registries are
imported, to name the engine packages): no module of the backend, the client or the web
client takes part in an import cycle; only the backend's app layer imports the web
framework; engine packages stay apart.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency); imports under ``if TYPE_CHECKING:`` do not. ``from package import name``
is an edge to ``package.name`` when that is a module, else to ``package``. Importing a
module runs its parent package's ``__init__`` first; that implicit step is no edge (it
cannot deadlock: the parent is already being imported).
"""

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "slicerfm_backend": REPO / "backend" / "src" / "slicerfm_backend",
    "slicerfm_client": REPO / "client" / "slicerfm_client",
    "slicerfm_web": REPO / "web" / "src" / "slicerfm_web",  # cycles only: it is no server layer
}
#: Modules allowed to import FastAPI or Starlette: the HTTP layer.
APP_LAYER = ("slicerfm_backend.app", "slicerfm_backend.deps", "slicerfm_backend.http_errors",
             "slicerfm_backend.routes")
WEB_FRAMEWORKS = ("fastapi", "starlette")


def module_files() -> Dict[str, Path]:
    """``{dotted module name: file}`` for every module of the packages."""
    out = {}
    for package, root in PACKAGES.items():
        for file in sorted(root.rglob("*.py")):
            parts = [package, *file.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = file
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(module: str, file: Path, modules) -> Set[str]:
    """What ``module`` imports: modules of ``modules`` when they are known, else the raw
    dotted names (third-party packages). ``from a import b`` names ``a.b`` when that is a
    module, else ``a``."""
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(child) for body in node.body for child in ast.walk(body))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    names: Set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                source = ".".join(parts + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                names.add(submodule if submodule in modules else source)
    return names


def import_graph() -> Dict[str, Set[str]]:
    """``{module: modules of the packages it imports}``."""
    files = module_files()
    return {module: {name for name in imported_names(module, file, files) if name in files} - {module}
            for module, file in files.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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


def test_the_import_graph_sees_every_module_and_the_known_edges():
    graph = import_graph()
    assert len(graph) > 80
    assert "slicerfm_backend.errors" in graph["slicerfm_backend.jobs"]
    assert "slicerfm_client.protocol" in graph["slicerfm_backend.errors"]


def test_the_cycle_finder_finds_a_lazy_two_module_cycle():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_backend_the_client_or_the_web_client_takes_part_in_an_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (every import counts, lazy ones too):\n" + "\n".join(
        " <-> ".join(component) for component in found)


@pytest.mark.parametrize("module", sorted(m for m in module_files()
                                           if m.startswith(("slicerfm_backend", "slicerfm_client"))
                                           and not m.startswith(APP_LAYER)))
def test_only_the_app_layer_imports_the_web_framework(module):
    files = module_files()
    names = imported_names(module, files[module], files)
    web = sorted({n for n in names if n.split(".")[0] in WEB_FRAMEWORKS})
    assert not web, f"{module} imports {', '.join(web)}; raise errors.DomainError and leave HTTP to the app layer"


def _engine_packages():
    """The packages the registries name (``"slicerfm_backend.engines.classic:ClassicEngine"``
    -> ``slicerfm_backend.engines.classic``). Code several engines share lives in a package
    of its own that is not registered (e.g. ``engines/slicewise/``)."""
    from slicerfm_backend.engines.registry import ENGINE_CLASSES
    from slicerfm_backend.registration.registry import REGISTRATION_ENGINE_CLASSES

    targets = list(ENGINE_CLASSES.values()) + list(REGISTRATION_ENGINE_CLASSES.values())
    return tuple(sorted({target.partition(":")[0] for target in targets}))


#: One package per engine, found from the registries (not listed here).
ENGINE_PACKAGES = _engine_packages()


def test_the_engine_packages_are_found():
    assert {"slicerfm_backend.engines.classic", "slicerfm_backend.engines.vista3d",
            "slicerfm_backend.registration.gradicon"} <= set(ENGINE_PACKAGES)


@pytest.mark.parametrize("package", ENGINE_PACKAGES)
def test_an_engine_package_imports_no_other_engine_package(package):
    graph = import_graph()
    others = tuple(p for p in ENGINE_PACKAGES if p != package)
    used = sorted({target for module, targets in graph.items() if module == package or module.startswith(package + ".")
                   for target in targets for other in others if target == other or target.startswith(other + ".")})
    assert not used, f"{package} imports {', '.join(used)}; share code through engine_core/ or weights/"


#: Modules that may import engine packages besides the engines themselves: the benchmark
#: builds engines' networks with random weights to measure them (it is no part of the server).
MEASURING = "slicerfm_backend.benchmark"


def test_the_server_reaches_engines_only_through_their_registries_and_seams():
    """No route, service or command imports an engine package: they name engines by their
    registry string and use the interfaces in engines/base.py and registration/base.py."""
    outside = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                     if not (module == MEASURING or module.startswith(MEASURING + "."))
                     for target in targets for package in ENGINE_PACKAGES
                     if (target == package or target.startswith(package + "."))
                     and not (module == package or module.startswith(package + ".")))
    assert not outside, "\n".join(outside)
