"""One-way layers and no import circles, read from the source (AST), never by importing it.

Layers, lowest first: core, seeds, agents, synthesis, validators, storage, flows, cli. A
module may import its own layer, a lower one and the core; an import of a higher layer is a
"back-up import" and fails. The core is a short allow-list of small shared modules (pipeline
base, tier names, bundle folder names, the metric registry) that imports no layer.

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:`. A name
used only in annotations is still a dependency a reader must follow, and a TYPE_CHECKING
circle turns into a real one the day the name is needed at run time. One exception: the core's
`Candidate` carries every layer's results, so core modules may name layer types under
TYPE_CHECKING (annotations only, never at run time). Those imports still count for circles.
Imports by string (importlib, as in storage/__init__'s lazy API) are not seen: keep them
inside one layer.

Top-level modules of `sandforge/` that are not core sit in the flows layer (plain modules the
flows call: scheduling, reports); `sandforge/cli.py` and `sandforge/commands/` are the CLI.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("core", "seeds", "agents", "synthesis", "validators", "storage", "flows", "cli")
CORE = frozenset(
    {
        "sandforge",
        "sandforge.pipeline",
        "sandforge.tiers",
        "sandforge.bundle_files",
        "sandforge.validators.metrics",  # the metric registry: core by design, kept in place
    }
)
SUBPACKAGE_LAYER = {
    "sandforge.seeds": "seeds",
    "sandforge.agents": "agents",
    "sandforge.synthesis": "synthesis",
    "sandforge.validators": "validators",
    "sandforge.storage": "storage",
    "sandforge.flows": "flows",
    "sandforge.commands": "cli",
    "sandforge.cli": "cli",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest package module the statement names)
    line: int
    type_checking: bool


def layer_of(module: str) -> str:
    if module in CORE:
        return "core"
    for prefix, layer in SUBPACKAGE_LAYER.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return "flows"  # any other sandforge/*.py: plain modules beside the flows


def package_modules() -> dict[str, Path]:
    """Every module the wheel installs: the .py files of each package pyproject lists."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    mapping = setuptools["package-dir"]
    modules = {}
    for package in setuptools["packages"]:
        parts = package.split(".")
        cut = max(n for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in mapping)
        folder = REPO / mapping[".".join(parts[:cut])] / Path(*parts[cut:])
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names a statement may import, most specific first (`from a import b` -> a.b, a)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def imports_of(
    module: str, source: str, known: Iterable[str], is_package: bool = False
) -> list[Import]:
    """Imports of package modules anywhere in `source`, marked when under TYPE_CHECKING."""
    known = set(known)
    found: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = _targets(node, module, is_package)
            if isinstance(node, ast.ImportFrom):  # `from a import b`: a.b if a module, else a
                names = [n for n in names[:-1] if n in known] or names[-1:]
            for name in names:
                while name and name not in known:  # `import a.b.c` where c is an attribute
                    name = name.rpartition(".")[0]
                if name and name != module:
                    found.append(Import(module, name, node.lineno, type_checking))
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(source), False)
    return found


def all_imports(modules: Mapping[str, Path]) -> list[Import]:
    return [
        found
        for name, path in modules.items()
        for found in imports_of(
            name, path.read_text(encoding="utf-8"), modules, path.stem == "__init__"
        )
    ]


def back_up_imports(imports: Iterable[Import]) -> list[str]:
    """Imports of a higher layer, except the core's annotation-only imports."""
    bad = []
    for found in imports:
        source, target = layer_of(found.source), layer_of(found.target)
        if source == "core" and found.type_checking:
            continue
        if target != "core" and LAYERS.index(target) > LAYERS.index(source):
            bad.append(f"{found.source}:{found.line} ({source}) imports {found.target} ({target})")
    return bad


def circles(imports: Iterable[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        graph.setdefault(found.source, set()).add(found.target)
        graph.setdefault(found.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found_circles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found_circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found_circles)


# --- the package ------------------------------------------------------------------------------


def test_the_walk_sees_the_whole_package() -> None:
    modules = package_modules()
    assert {"sandforge.pipeline", "sandforge.cli", "sandforge.storage.s3"} <= set(modules)
    assert set(CORE) <= set(modules), sorted(set(CORE) - set(modules))
    assert len(all_imports(modules)) > 100  # the walk reads function-level imports too


def test_no_module_imports_a_higher_layer() -> None:
    bad = back_up_imports(all_imports(package_modules()))
    assert not bad, "back-up imports:\n" + "\n".join(bad)


def test_no_import_circles() -> None:
    found = circles(all_imports(package_modules()))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


# --- the checker itself -----------------------------------------------------------------------

KNOWN = {
    "sandforge.pipeline",
    "sandforge.seeds.card",
    "sandforge.agents",
    "sandforge.agents.dna",
    "sandforge.storage",
    "sandforge.storage.bundle",
    "sandforge.validators.stages",
}


def test_a_function_level_import_of_a_higher_layer_is_a_back_up_import() -> None:
    source = "def f():\n    from sandforge.storage.bundle import PUBLIC\n"
    found = imports_of("sandforge.agents.dna", source, KNOWN)
    assert found == [Import("sandforge.agents.dna", "sandforge.storage.bundle", 2, False)]
    assert back_up_imports(found) == [
        "sandforge.agents.dna:2 (agents) imports sandforge.storage.bundle (storage)"
    ]


def test_type_checking_imports_count_except_the_cores_annotations() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sandforge.storage import bundle\n"
    )
    lower = imports_of("sandforge.seeds.card", source, KNOWN)
    assert lower == [Import("sandforge.seeds.card", "sandforge.storage.bundle", 3, True)]
    assert len(back_up_imports(lower)) == 1
    core = imports_of("sandforge.pipeline", source, KNOWN)
    assert core[0].type_checking and back_up_imports(core) == []
    runtime = imports_of("sandforge.pipeline", "from sandforge.storage import bundle\n", KNOWN)
    assert back_up_imports(runtime) != []  # the core may not import a layer at run time


def test_downward_and_core_imports_pass() -> None:
    source = "import sandforge.pipeline\nfrom sandforge.agents.dna import TaskDNA\n"
    found = imports_of("sandforge.validators.stages", source, KNOWN)
    assert {f.target for f in found} == {"sandforge.pipeline", "sandforge.agents.dna"}
    assert back_up_imports(found) == []


def test_relative_imports_resolve() -> None:
    found = imports_of("sandforge.agents", "from .dna import TaskDNA\n", KNOWN, is_package=True)
    assert [f.target for f in found] == ["sandforge.agents.dna"]


def test_a_circle_through_a_function_level_import_is_found() -> None:
    a = imports_of("sandforge.storage.bundle", "import sandforge.seeds.card\n", KNOWN)
    b = imports_of("sandforge.seeds.card", "def f():\n    import sandforge.storage.bundle\n", KNOWN)
    c = imports_of("sandforge.agents.dna", "import sandforge.seeds.card\n", KNOWN)
    assert circles([*a, *b, *c]) == [["sandforge.seeds.card", "sandforge.storage.bundle"]]
    assert circles([*a, *c]) == []
