"""The backend's copy of the package holds only what the backend runs (issue 10, point 5).

scripts/install-backend-python.sh leaves out the paths listed in
scripts/backend-python-leaves-out.txt (the `pg-llm` command, its charts and reports, the local
engine). These tests prove that is safe: nothing the SQL functions, the C bridge or the
preload reach imports a left-out module, every module of the installed copy imports under the
backend's Python without one, and the package has no import cycle.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = Path(os.environ.get("PG_LLM_PYTHON_PATH", "/usr/local/lib/pg_llm/python"))
LEAVES_OUT = [line.strip() for line in
              (ROOT / "scripts" / "backend-python-leaves-out.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
# What the C bridge names (ext/*.c) and the default wrapper class (pg_llm.bridge).
C_ENTRIES = {"pg_llm.bridge", "pg_llm.fdw", "pg_llm.preload", "pg_llm.scan_cost",
             "pg_llm.model_features", "pg_llm.spending", "pg_llm.multicorn_scan"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def left_out(name: str) -> bool:
    names = {"pg_llm." + p.removesuffix(".py").replace("/", ".") for p in LEAVES_OUT}
    return any(name == n or name.startswith(n + ".") for n in names)


def import_graph() -> dict[str, set[str]]:
    """module -> the pg_llm modules it imports anywhere (function bodies too)."""
    files = {module_name(f, ROOT): f for f in (ROOT / "pg_llm").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                subs = {f"{base}.{a.name}" for a in node.names} & files.keys()
                edges.update(subs)
                if len(subs) < len(node.names):
                    edges.add(base)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def backend_entries() -> set[str]:
    sql = "\n".join(p.read_text() for p in sorted((ROOT / "sql" / "idempotent").glob("*.sql")))
    return (set(re.findall(r'"(pg_llm(?:\.\w+)+):\w+"', sql))
            | set(re.findall(r"from (pg_llm(?:\.\w+)*) import", sql)) | C_ENTRIES)


def test_nothing_the_backend_reaches_is_left_out():
    graph = import_graph()
    assert backend_entries() <= graph.keys(), backend_entries() - graph.keys()
    reached, todo = set(), list(backend_entries())
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert sorted(m for m in reached if left_out(m)) == []
    # and the list leaves out something real: the command line is not in the backend
    assert "pg_llm.cli" not in reached and "pg_llm.finetune.cli" not in reached


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(name, path):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_installed_copy_leaves_them_out_and_imports_in_a_backend(db):
    copy = INSTALLED / "pg_llm"
    assert (copy / "bridge.py").exists(), "run make install first"
    for path in LEAVES_OUT:
        assert not (copy / path).exists(), path
    modules = sorted(module_name(f, INSTALLED) for f in copy.rglob("*.py"))
    assert "pg_llm.api.finetune" in modules and "pg_llm.catalog.jobs" in modules
    # Inside a backend: its Python, its sys.path (llm._boot), plpy there for preload.
    db.execute("""
        CREATE FUNCTION import_all(modules text[]) RETURNS text[] LANGUAGE plpython3u AS $$
        import importlib, sys
        plpy.execute("SELECT llm._boot()")
        for name in modules:
            importlib.import_module(name)
        return [sys.modules["pg_llm"].__file__, sys.executable] + sorted(sys.modules)
        $$""")
    package, executable, *loaded = db.execute("SELECT import_all(%s)", (modules,)).fetchone()[0]
    assert package.startswith(str(INSTALLED)), package
    assert [m for m in loaded if left_out(m)] == []
    assert not {"torch", "transformers", "llama_cpp", "matplotlib", "tqdm"} & set(loaded)
