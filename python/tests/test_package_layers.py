"""The package's import graph: no cycles, each module imports only from its own layer or below.

The layers (docs/python-package.md): 1 values, errors, specs, config and the generated code;
2 the transport; 3 the features on the wire; 4 the facades; 5 the DSPy integration; 6 agents.
Imports are read from the source with ``ast``, every one of them: at module level, inside
functions (deferred imports count), and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "toolbridge"

LAYERS: dict[str, int] = {
    "toolbridge.errors": 1,
    "toolbridge.values": 1,
    "toolbridge.specs": 1,
    "toolbridge.config": 1,
    "toolbridge.v1": 1,
    "toolbridge.transport": 2,
    "toolbridge.batch": 3,
    "toolbridge.retry": 3,
    "toolbridge.metrics": 3,
    "toolbridge.variables": 3,
    "toolbridge.pool": 3,
    "toolbridge.health": 3,
    "toolbridge.launcher": 3,
    "toolbridge.redis_server": 3,
    "toolbridge.shutdown": 3,
    "toolbridge.proxy": 4,
    "toolbridge.client": 4,
    "toolbridge.client_base": 4,
    "toolbridge.sync_client": 4,
    "toolbridge.variable_proxy": 4,
    "toolbridge.session_context": 4,
    "toolbridge": 4,
    "toolbridge.dspy": 5,
    "toolbridge.agent": 6,
    # The worker: @tool and its service are facades; the process and its agent runs sit on top.
    "toolbridge.worker": 4,
    "toolbridge.worker.agents": 7,
    "toolbridge.worker.__main__": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    # The generated code imports only itself and protobuf.
    if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
}


def layer_of(module: str) -> int:
    """The layer of the longest prefix of ``module`` named in LAYERS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports included)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> Iterator[tuple[str, int, list[str]]]:
    """(imported toolbridge module, line, names imported from it) for every import in ``module``."""
    path = MODULES[module]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "toolbridge" or alias.name.startswith("toolbridge."):
                    yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, path, node)
            if source != "toolbridge" and not source.startswith("toolbridge."):
                continue
            plain = []
            for alias in node.names:
                # `from toolbridge.x import y` imports the module toolbridge.x.y when there is one.
                submodule = f"{source}.{alias.name}"
                if (
                    submodule in MODULES
                    or (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").exists()
                ):
                    yield submodule, node.lineno, []
                else:
                    plain.append(alias.name)
            if plain:
                yield source, node.lineno, plain


def graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in imports_of(module) if target != module} for module in MODULES}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that starts and ends with the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_the_walk_sees_every_kind_of_import() -> None:
    # The checks below are only as good as the graph: it must contain imports made inside
    # functions and under TYPE_CHECKING, and `from package import submodule`.
    assert len(MODULES) > 25
    edges = graph()
    assert "toolbridge.transport.aio" in edges["toolbridge.transport"]
    assert "toolbridge.agent.demo" in edges["toolbridge.agent.lm"]  # imported inside a function
    assert "toolbridge.transport" in edges["toolbridge.client"]


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer() -> None:
    missing = []
    for module in MODULES:
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    assert missing == [], f"add these modules to LAYERS (and docs/python-package.md): {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_import_only_their_layer_or_below(module: str) -> None:
    layer = layer_of(module)
    upward = [
        f"line {line}: {target} (layer {layer_of(target)})"
        for target, line, _ in imports_of(module)
        if layer_of(target) > layer
    ]
    assert upward == [], f"{module} (layer {layer}) imports from above: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(module: str) -> None:
    private = [
        f"line {line}: {name} from {target}"
        for target, line, names in imports_of(module)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


# Standard library functions whose documented names start with "_".
DOCUMENTED_UNDERSCORE_NAMES = {"os._exit"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_reaches_into_private_attributes_of_other_objects(module: str) -> None:
    # `self._x` and `cls._x` are an object's own; `other._x` reaches into something else's insides.
    tree = ast.parse(MODULES[module].read_text())
    reaching = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        and ast.unparse(node) not in DOCUMENTED_UNDERSCORE_NAMES
    ]
    assert reaching == []
