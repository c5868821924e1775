"""The properties of the package's layout, checked on its source: no import
circle, one package (the model) that touches an MLP's private state, one
package that names array libraries, no module that grows past one job's size,
and an ``import bpnet`` that loads only the core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bpnet"
MODULES = sorted(PACKAGE.rglob("*.py"))
LIBRARIES = ("cupy", "torch", "jax", "jaxlib", "dask", "distributed")
#: Where naming an array library is the job: backend selection and transfer,
#: and the benchmarks, which run the peers.
MAY_NAME_LIBRARIES = ("backend", "bench")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules that ``path`` imports anywhere (functions included), except under
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and ast.unparse(node.test) == "TYPE_CHECKING" for n in ast.walk(node)}
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            full = f"{base}.{module}".strip(".") if node.level else module
            found.add(full)
            found.update(f"{full}.{a.name}" for a in node.names)  # from . import kernels
    return found


def _graph() -> dict[str, set[str]]:
    names = {_name(p) for p in MODULES}
    return {_name(p): {m for m in _imports(p) if m in names and m != _name(p)} for p in MODULES}


def _without_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # Importing bpnet.train.loop runs bpnet/train/__init__.py first; that is no
    # circle, so a module's own parent packages are not counted as its imports.
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def find_circle(graph: dict[str, set[str]]) -> tuple[str, ...] | None:
    """A cycle of ``graph`` (module -> the modules it imports), or None."""
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if module in path:
            return (*path[path.index(module):], module)
        if module in done:
            return None
        for dep in sorted(graph[module]):
            found = visit(dep, (*path, module))
            if found:
                return found
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, ()))), None)


def test_no_import_circle():
    graph = _without_parents(_graph())
    assert "bpnet.model" in graph["bpnet.sklearn._base"]  # the graph sees the imports
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_check_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ("a", "b", "c", "a")
    assert find_circle({"a": {"b"}, "b": set()}) is None


#: The package whose modules together are "the model": the only code that may
#: touch an MLP's private state.
MODEL = PACKAGE / "model"


def _private_mlp_attributes() -> set[str]:
    """Private names the model's classes use on ``self`` (MLP and the parts it
    is built from)."""
    names = set()
    for path in sorted(MODEL.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            names |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
                      and isinstance(n.value, ast.Name) and n.value.id == "self"}
            names |= {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_only_the_model_package_touches_an_mlps_private_state():
    private = _private_mlp_attributes()
    assert {"_params", "_optimizer_state", "_xy", "_arch"} <= private
    offenders = []
    for path in MODULES:
        if path.parent == MODEL:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in private
                    and not (isinstance(node.value, ast.Name)
                             and node.value.id in ("self", "cls"))):
                offenders.append(f"{_name(path)}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


def _names_a_library(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            hits += [a.name for a in node.names if a.name.split(".")[0] in LIBRARIES]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in LIBRARIES:
                hits.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("is_") and any(
                f"_{lib}_" in node.attr for lib in (*LIBRARIES, "numpy", "array_api_strict")):
            hits.append(node.attr)  # array_api_compat.is_torch_array & co: a branch on the library
    return hits


def test_only_the_backend_package_names_array_libraries():
    offenders = {}
    for path in MODULES:
        inside = path.relative_to(PACKAGE).parts[0]
        if inside in MAY_NAME_LIBRARIES:
            continue
        hits = _names_a_library(path)
        if hits:
            offenders[_name(path)] = hits
    assert not offenders, offenders
    assert _names_a_library(PACKAGE / "backend" / "transfer.py")  # the check sees them


def test_no_module_outgrows_one_job():
    sizes = {_name(p): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert not {m: n for m, n in sizes.items() if n > 650}, sizes


def test_import_bpnet_loads_only_the_core():
    heavy = (*LIBRARIES, "sklearn", "scipy", "matplotlib", "tqdm", "threadpoolctl", "pandas")
    code = ("import sys, bpnet; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{heavy!r} or m.startswith(('bpnet.bench', 'bpnet.cli', 'bpnet.sklearn')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
