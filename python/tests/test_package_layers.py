"""The package's import graph: no cycles, each module imports only from its own layer or below.

The layers (docs/python-package.md): 1 ``core`` and the generated code; 2 the transport;
3 the features on the wire and the launchers; 4 the clients (and the package's exports); 5 the
DSPy integration; 6 agents; the worker's process on top.
Imports are read from the source with ``ast``, every one of them: at module level, inside
functions (deferred imports count), and under ``TYPE_CHECKING``.

Sizes too: every Python file of the project (sources, tests, benchmarks, examples, test data)
stays at 500 lines or fewer, and every function of the package at 80, generated code aside; a
file or function past that does several jobs and is split by concern.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "toolbridge"
ROOT = SRC.parents[1]
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

LAYERS: dict[str, int] = {
    "toolbridge.core": 1,
    "toolbridge.v1": 1,
    "toolbridge.transport": 2,
    "toolbridge.features": 3,
    "toolbridge.launch": 3,
    "toolbridge.client": 4,
    # The package's own module: the lazy exports of docs/python-package.md.
    "toolbridge": 4,
    # The OpenTelemetry SDK of toolbridge's own processes (workers, agent interpreters).
    "toolbridge.tracing": 4,
    "toolbridge.dspy": 5,
    "toolbridge.agent": 6,
    # The worker: @tool and its service sit on the bottom layer alone; the process and its
    # agent runs on top of everything.
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
    assert "toolbridge.transport" in edges["toolbridge.client.aio"]


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


def modules_loaded_by(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return result.stdout.split()


def test_importing_the_worker_loads_no_client_transport_or_grpc() -> None:
    # A worker process serves tools over its own server: the clients, their transports and
    # gRPC's client stack (grpc.aio comes with any `import grpc`) are not its business.
    loaded = modules_loaded_by("import toolbridge.worker")
    assert "toolbridge.worker.tools" in loaded
    above_the_worker = (
        "toolbridge.client",
        "toolbridge.transport",
        "toolbridge.features",
        "toolbridge.launch",
        "toolbridge.dspy",
        "toolbridge.agent",
        "grpc",
    )
    assert [module for module in loaded if module.startswith(above_the_worker)] == []


def test_the_package_imports_each_export_on_first_use() -> None:
    loaded = modules_loaded_by("import toolbridge")
    assert [module for module in loaded if module.startswith("toolbridge.")] == []
    loaded = modules_loaded_by("from toolbridge import ErrorType")
    assert "toolbridge.core.errors" in loaded
    assert [module for module in loaded if module.startswith(("toolbridge.client", "grpc"))] == []


def test_every_export_resolves_and_is_typed() -> None:
    import toolbridge

    for name in toolbridge.__all__:
        assert getattr(toolbridge, name) is not None, name
    # What type checkers see (the imports under TYPE_CHECKING) is what the package exports.
    tree = ast.parse(MODULES["toolbridge"].read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for statement in node.body
        if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
    }
    assert typed == set(toolbridge.__all__)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = toolbridge.NoSuchName


def is_generated(path: Path) -> bool:
    return path.name.endswith(("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi"))


def project_python_files() -> list[Path]:
    """Every Python file of the project's own: not installed packages, not generated code."""
    skipped = {".venv", "node_modules", "__pycache__", "dist", "results"}
    return sorted(
        path
        for folder in ("python/src", "python/tests", "bench", "examples", "testdata")
        for path in (ROOT / folder).rglob("*.py")
        if not skipped.intersection(path.relative_to(ROOT).parts) and not is_generated(path)
    )


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_every_python_file_is_500_lines_or_fewer() -> None:
    files = project_python_files()
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {"python/src/toolbridge/client/aio.py", "python/tests/test_package_layers.py"} <= names
    assert not any(is_generated(path) for path in files)
    large = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in files
        if (lines := line_count(path)) > MAX_FILE_LINES
    ]
    assert large == [], "split these files by concern"


def long_functions(source: str, limit: int) -> list[tuple[str, int, int]]:
    """(name, line, length) of each function longer than ``limit`` lines, from ``def`` to its last line."""
    return [
        (node.name, node.lineno, length)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > limit
    ]


def test_long_functions_counts_signature_and_body() -> None:
    source = (
        "@decorated\n"
        "async def f(\n"
        "    a: int,\n"
        ") -> None:\n"
        "    def inner() -> None:\n"
        "        pass\n"
        "    return\n"
    )
    assert long_functions(source, 5) == [("f", 2, 6)]
    assert long_functions(source, 6) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_function_of_the_package_is_80_lines_or_fewer(module: str) -> None:
    long = [
        f"line {line}: {name} ({length} lines)"
        for name, line, length in long_functions(MODULES[module].read_text(), MAX_FUNCTION_LINES)
    ]
    assert long == [], "split these functions"
