"""The shape of the code: no import circle inside ``pna_engine``, the engine never imports
``pna_helpers``, and ``pna_helpers`` uses only the engine's public names (no ``_private``
helper or module). Read statically from the sources (lazy imports inside functions count;
imports under ``if TYPE_CHECKING:`` do not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` of every import, TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
    return out


def _graph(package: str) -> dict[str, set[str]]:
    files = {_module(p): p for p in (REPO / package).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for target, names, _ in _imports(path):
            if not target.startswith(package):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in files]
            for t in subs or [target]:
                if t != mod and t in files:
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_in_the_engine():
    graph = _graph("pna_engine")
    graph.pop("pna_engine", None)  # the package's __init__ holds only PHASES and the version
    for deps in graph.values():
        deps.discard("pna_engine")
    assert _cycles(graph) == []


def test_the_checker_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_engine_never_imports_helpers():
    for path in (REPO / "pna_engine").rglob("*.py"):
        bad = [(m, line) for m, _, line in _imports(path) if m.split(".")[0] == "pna_helpers"]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize("package", ["pna_helpers", "benchmarks"])
def test_only_public_engine_names_outside_the_engine(package):
    bad = []
    for path in (REPO / package).rglob("*.py"):
        for module, names, line in _imports(path):
            if not module.startswith("pna_engine"):
                continue
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            if private or any(part.startswith("_") for part in module.split(".")[1:]):
                bad.append(f"{path.relative_to(REPO)}:{line} {module} {private}")
    assert not bad, bad


def test_run_record_keeps_environment_overrides(monkeypatch, tmp_path):
    """Environment variables that change results (mirrors, cache) are recorded in run.json."""
    from pna_engine import pipeline
    from pna_engine.params import Params
    from pna_engine.state import RunState

    monkeypatch.setenv("PNA_TIGER_BASE_URL", "http://mirror.example/tiger")
    monkeypatch.delenv("PNA_LODES_BASE_URL", raising=False)
    rec = pipeline.run_record(RunState(params=Params(boundary="b", output="o"), staging=tmp_path))
    assert rec["environment"]["PNA_TIGER_BASE_URL"] == "http://mirror.example/tiger"
    assert "PNA_LODES_BASE_URL" not in rec["environment"]
    assert {"engine", "parameters", "inputs", "counts", "timings_s", "notes"} <= set(rec)
