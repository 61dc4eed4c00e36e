"""The shape of the code, checked on its syntax trees (every import counts, also those
inside functions):

* the engine (``analysis``) never imports Streamlit: everything it does runs from Python
  and the command line;
* no module imports another module's private names (``_name``): what a module shares it
  names publicly. The app's parts (``pages/parts/_ui.py`` and its neighbours) are modules
  of the app, imported by its pages; importing such a module is not reaching into one;
* the engine's modules import each other without cycles.
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
                parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            out += [(node.lineno, base, alias.name) for alias in node.names]
    return out


def test_the_engine_never_imports_streamlit():
    found = [f"{path.relative_to(ROOT)}:{line}" for name, path in sources("analysis").items()
             for line, module, _ in imports(name, path) if module.split(".")[0] == "streamlit"]
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
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not found, "\n".join(found)


def test_the_engines_modules_import_each_other_without_cycles():
    modules = sources("analysis")
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for _, module, imported in imports(name, path):
            target = f"{module}.{imported}" if imported and f"{module}.{imported}" in modules else module
            if target in modules and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    cycles, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
