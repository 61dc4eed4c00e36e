"""The shape of the code, checked on its syntax trees (every import counts, also those
inside functions):

* the engine (``analysis``) never imports Streamlit: everything it does runs from Python
  and the command line;
* no module imports another module's private names (``_name``): what a module shares it
  names publicly. The app's parts (``pages/parts/_ui.py`` and its neighbours) are modules
  of the app, imported by its pages; importing such a module is not reaching into one;
* the engine's modules import each other without cycles (importing ``a.b.c`` runs the
  package ``a.b`` first, so that counts as an import of ``a.b``);
* the engine's packages are layered: a package imports only from the layers below its
  own (``LAYERS``), so the store never reaches up into an analysis;
* the code uses the modules' homes, never the flat layout's old names that
  :mod:`analysis.moved` keeps importable for scripts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("analysis", "pages")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(*folders: str) -> dict[str, Path]:
    found = {module_name(p): p for folder in folders for p in (ROOT / folder).rglob("*.py")}
    if "pages" in folders:
        found["app"] = ROOT / "app.py"
    return found


def imports(name: str, path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, module, imported name or None)`` of every import in the file, relative
    imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            out += [(node.lineno, base, alias.name) for alias in node.names]
    return out


def test_the_engine_never_imports_streamlit():
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in sources("analysis").items()
        for line, module, _ in imports(name, path)
        if module.split(".")[0] == "streamlit"
    ]
    assert not found, found


def test_no_module_imports_another_modules_private_names():
    modules = sources(*OURS)
    found = []
    for name, path in modules.items():
        aliases = {}
        for line, module, imported in imports(name, path):
            if not module.startswith(OURS):
                continue
            if imported is None:
                continue
            if f"{module}.{imported}" in modules:  # a module of ours, imported whole
                aliases[imported] = f"{module}.{imported}"
                continue
            if imported.startswith("_") and not imported.startswith("__") and module != name:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}.{imported}")
        for node in ast.walk(ast.parse(path.read_text())):  # module._name
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not found, "\n".join(found)


def import_graph() -> dict[str, set[str]]:
    """Which of the engine's modules each one runs by importing: the module imported and
    the packages above it (outside the importer's own package)."""
    modules = sources("analysis")
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for _, module, imported in imports(name, path):
            target = f"{module}.{imported}" if imported and f"{module}.{imported}" in modules else module
            parts = target.split(".")
            for cut in range(2, len(parts) + 1):
                run = ".".join(parts[:cut])
                if run in modules and run != name and not name.startswith(run + "."):
                    graph[name].add(run)
    return graph


def test_the_engines_modules_import_each_other_without_cycles():
    graph = import_graph()
    cycles, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


# Lowest first. A module at the top of ``analysis`` is its own entry. The demo builds its project through
# ingest; the command line reaches every analysis.
LAYERS = [
    {"errors", "wording", "palette", "moved"},
    {"store"},
    {"engines", "stats", "metrics"},
    {"ingest", "slices", "numbers"},
    {"discovery", "valsets", "overview"},
    {"estimation"},
    {"drift"},
    {"monitors"},
    {"compare", "demo"},  # the demo comes with monitors, evaluated once
    {"reports"},
    {"cli", "__init__"},
    {"__main__"},
]


def unit(module: str) -> str:
    """The package (or top-level module) of ``analysis`` that a module belongs to."""
    return module.split(".")[1] if "." in module else "__init__"


def layer_of(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if unit(module) in names)


def test_every_package_of_the_engine_has_a_layer():
    units = {m.split(".")[1] for m in sources("analysis") if "." in m}
    assert units <= set().union(*LAYERS), units - set().union(*LAYERS)


def test_the_engines_packages_import_only_from_layers_below():
    found = []
    for name, targets in import_graph().items():
        for target in targets:
            if target == "analysis" or layer_of(target) < layer_of(name) or unit(target) == unit(name):
                continue
            found.append(f"{name} imports {target}, in layer {layer_of(target)} (its own is {layer_of(name)})")
    assert not found, "\n".join(sorted(found))


def test_the_code_imports_modules_by_their_homes_not_their_old_names():
    from analysis.moved import MOVED

    real = sources("analysis")
    old = {f"analysis.{name}" for name in MOVED} - set(real)  # some old modules are packages now
    found = []
    for folder in ("analysis", "pages", "tests", "benchmarks"):
        for name, path in sources(folder).items():
            if path.name == "test_moved_modules.py":
                continue
            for line, module, imported in imports(name, path):
                full = f"{module}.{imported}" if imported else module
                if module in old or (module == "analysis" and full in old):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {full}")
    assert not found, "\n".join(found)


def _function_level_imports(path: Path):
    """(line, text, comment nearby, inside a module __getattr__) of each import of an
    ``analysis`` module made inside a function."""
    source = path.read_text()
    lines = source.splitlines()
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis"):
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2].strip()
                yield node.lineno, here.strip(), "#" in here or above.startswith("#"), func.name == "__getattr__"


def test_an_import_inside_a_function_says_why():
    """Imports belong at the top of a module, where they show the graph. One made inside a
    function (to keep a fresh page or the command line from loading an engine it may not
    use) carries a comment saying so, except in the command modules, whose commands each
    load what they run, and in a package's lazy ``__getattr__``."""
    silent = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in sorted((ROOT / "analysis").rglob("*.py"))
        if "cli" not in path.relative_to(ROOT).parts
        for line, text, commented, lazy_attribute in _function_level_imports(path)
        if not (commented or lazy_attribute)
    ]
    assert not silent, "imports inside functions without a reason:\n" + "\n".join(silent)
