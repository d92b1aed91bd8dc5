"""The package's modules import one another without cycles.

The graph is read from the source (every `import`, at module level or
inside a function), so a cycle hidden behind a function-level import is
found too."""

import ast
import pathlib

import keras_meta

PACKAGE_ROOT = pathlib.Path(keras_meta.__file__).parent


def module_name(path):
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules():
    """`{module name: path}` of every module of keras_meta."""
    return {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


def imported_modules(path, modules):
    """The keras_meta modules `path` imports: `import a.b`, `from a import b`
    (b a module: that module; b a name: module a) and `from a.b import c`."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                imported.add(submodule if submodule in modules else node.module)
    return imported


def find_cycle(graph):
    """A list of nodes `[a, b, ..., a]` forming a cycle of `graph` (a dict
    of node → successors), or None."""
    state = {}  # node → "open" while on the DFS stack, "done" after

    def visit(node, path):
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return path[path.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor, path + [successor])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_three_module_cycle_and_accepts_a_tree():
    assert find_cycle({"meta_model": {"export"}, "export": {"metric"},
                       "metric": {"meta_model"}}) == ["export", "metric", "meta_model", "export"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_resolve_submodules_and_names():
    modules = package_modules()
    imported = imported_modules(PACKAGE_ROOT / "algorithms" / "metric.py", modules)
    assert imported == {"keras_meta.algorithms.embedding_model"}
    imported = imported_modules(PACKAGE_ROOT / "algorithms" / "maml.py", modules)
    assert {"keras_meta.meta_model", "keras_meta.update_rules"} <= imported


def test_package_has_no_import_cycle():
    modules = package_modules()
    graph = {name: imported_modules(path, modules) - {name} for name, path in modules.items()}
    # Names a module takes from its own package's `__init__` (which imports the module) are
    # no cycle: Python runs the package first.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))
