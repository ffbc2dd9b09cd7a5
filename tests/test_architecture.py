"""The package's structure: data flows one way. Every import inside ``ncutils`` (module-level or inside a
function) goes from a module to one below it in :data:`LAYERS`, so there is no import cycle and no
back-edge; every file states its one job in its first docstring line and stays short."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ncutils"
# Bottom to top: a module may import only modules listed before it. A folder (models/, claims/, bench/)
# is one unit: its files may import each other.
LAYERS = [
    "paths", "data", "metrics", "logistic", "models", "zoo", "scales", "accumulators",  # data, models
    "corruptions", "domains", "noise", "taps", "streaming", "probe", "train",  # what a run is made of
    "config", "experiment", "profiling", "store", "studies", "grid", "results",  # a run (any model) -> store
    "estimate", "sweep",                                                   # costing and computing many runs
    "verdict", "frames", "estimates", "claims", "palette", "show", "plots", "plots_scale", "plots_noise", "chapter", "labs", "book",  # tables, verdicts, figures, labs, book
    "bench", "cli", "__main__", "__init__",                                # entry points and the package face
]
MAX_LINES = 400


def unit(module: str) -> str:
    """``ncutils.claims.clean`` -> ``claims``; ``ncutils`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (PACKAGE.parent / relative / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The ncutils modules ``path`` imports anywhere in its body."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ncutils"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            elif (node.module or "").split(".")[0] == "ncutils":
                base = node.module
            else:
                continue
            names = [f"{base}.{a.name}" for a in node.names]
            found |= {n for n in names if is_module(n)} or {base}
            found |= {base} if any(not is_module(n) for n in names) else set()
    return found - {name}


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    units = {unit(module_name(p)) for p in FILES}
    assert not units - set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS in the order data flows"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_down_the_layers(path):
    here = unit(module_name(path))
    upward = sorted(m for m in imports(path) if unit(m) != here and LAYERS.index(unit(m)) > LAYERS.index(here))
    assert not upward, f"{path.relative_to(PACKAGE.parent)} imports {upward}, above it in LAYERS (a back-edge)"


def test_no_import_cycle_between_files():
    graph = {module_name(p): imports(p) for p in FILES}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_file_is_short_and_states_its_job(path):
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (at most {MAX_LINES})"
    if text.strip():
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.strip(), f"{path.relative_to(PACKAGE.parent)} has no docstring stating its job"


def test_the_checker_sees_a_back_edge_and_a_function_level_import(tmp_path, monkeypatch):
    """The test above can fail: a function-level import of a higher module is found."""
    fake = tmp_path / "ncutils"
    fake.mkdir()
    for name, body in {"__init__.py": '"""face"""', "data.py": '"""data"""\ndef f():\n    from .store import Store\n',
                       "store.py": '"""store"""\nfrom .data import f\n'}.items():
        (fake / name).write_text(body)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imports(fake / "data.py") == {"ncutils.store"}
    assert imports(fake / "store.py") == {"ncutils.data"}
