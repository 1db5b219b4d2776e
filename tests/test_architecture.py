"""The floors of the house: the layers and the core's independence from Qt checked statically
(import-linter, the contracts in pyproject.toml) and at run time, and no import circle between files."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_modules_import_without_qt():
    code = ("import sys; import brainview.bundle, brainview.decoding.decoder, brainview.decoding.retrieval, "
            "brainview.decoding.ridge, brainview.decoding.synthetic, brainview.cli; "
            "import brainview.cortex, brainview.state.session, brainview.state.study, brainview.state.headless; "
            "import brainview.analysis.evaluation, brainview.analysis.tables, brainview.analysis.figures; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'vtkmodules', 'pyqtgraph', 'superqt')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_opening_a_bundle_does_not_import_torch():
    code = "import sys, brainview.bundle; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def import_cycles(package: str = "brainview") -> list[list[str]]:
    """The groups of files that import each other, directly or around a circle (Tarjan's strongly
    connected components of grimp's graph, which counts imports inside functions and under
    TYPE_CHECKING too)."""
    import grimp

    graph = grimp.build_graph(package)
    edges = {m: [x for x in graph.find_modules_directly_imported_by(m) if x.split(".")[0] == package]
             for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_no_file_imports_a_file_that_imports_it_back():
    assert import_cycles() == []


def test_import_cycles_are_found(tmp_path, monkeypatch):
    package = tmp_path / "circle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from circle import b\n")
    (package / "b.py").write_text("from circle import a\n")
    (package / "c.py").write_text("from circle import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("circle") == [["circle.a", "circle.b"]]


def test_the_top_of_the_package_shows_its_floors():
    """Besides __init__ and __main__, only the basics every floor may use sit directly in brainview/."""
    top = {p.stem for p in (ROOT / "brainview").glob("*.py")} - {"__init__", "__main__"}
    assert len(top) <= 5, sorted(top)
    floors = {p.name for p in (ROOT / "brainview").iterdir() if (p / "__init__.py").is_file()}
    assert {"cli", "qt", "state", "analysis", "decoding", "cortex", "bundle"} <= floors


def test_package_inits_only_re_export():
    """An ``__init__.py`` holds a docstring, imports and ``__all__`` (the top one its ``__version__``): code
    lives in modules whose names say what they hold."""
    import ast

    for init in (ROOT / "brainview").rglob("__init__.py"):
        for node in ast.parse(init.read_text()).body:
            names = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
            allowed = (isinstance(node, (ast.Import, ast.ImportFrom))
                       or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
                       or (isinstance(node, ast.Assign) and names in (["__all__"], ["__version__"])))
            assert allowed, f"{init.relative_to(ROOT)} line {node.lineno}: code belongs in a module"
