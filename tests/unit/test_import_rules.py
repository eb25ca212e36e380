"""The package's shape, read from its own imports (ast, nothing is imported): no import circle,
and no import across a rule of the house (the daemon never imports Textual, the model never
imports the etcd adapter, a widget never talks to etcd, nothing at run time needs gRPC).

Every import counts, also those inside functions and under `if TYPE_CHECKING:`: a lazy or
type-only import is still a dependency a reader must follow, and each of the circles this test
was written against had one. A package's own `__init__` is not counted as imported by its
submodules (Python runs it, but no name flows back from it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hatui"

ETCD_ADAPTER = {"hatui.etcd.store", "hatui.etcd.kv", "hatui.etcd.gateway"}
MODEL = {"hatui.cluster", "hatui.member", "hatui.config"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def read_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: every module name it imports}, hatui's own resolved to modules that exist, other
    packages by their full dotted name (`textual.app`, `grpc`)."""
    root = package.parent
    files = {module_name(p, root): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in files else target)
        graph[name] = {m for m in found if m != name and (m in files or not m.startswith("hatui"))}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    inner = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(inner[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(inner):
        if v not in index:
            visit(v)
    return found


def _in(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


# (who, what it must not import, why)
RULES = [
    ("hatui.daemon", {"textual"}, "the daemon runs headless: it never imports Textual"),
    ("hatui.daemon", {"hatui.app", "hatui.screens", "hatui.widgets"}, "the daemon never imports the console"),
    ("hatui.cluster", ETCD_ADAPTER | {"textual", "hatui.daemon"}, "the model knows no etcd, console or daemon"),
    ("hatui.config", ETCD_ADAPTER | {"textual", "hatui.daemon"}, "the model knows no etcd, console or daemon"),
    ("hatui.member", ETCD_ADAPTER | {"textual", "hatui.daemon"}, "the model knows no etcd, console or daemon"),
    ("hatui.widgets", ETCD_ADAPTER, "a widget renders the model; it never talks to etcd"),
    ("hatui.widgets", {"hatui.app", "hatui.screens", "hatui.console"},
     "a widget is reusable: it knows no app or screen"),
    ("hatui.screens", {"hatui.console"}, "a screen reaches the app only through screens/console_app.ConsoleApp"),
    ("hatui.console", {"hatui.app", "hatui.cli", "hatui.daemon"},
     "the app's parts are inherited by hatui.app: they never import it, the CLI or the daemon"),
    ("hatui.etcd", {"hatui.daemon", "hatui.cli", "hatui.app", "hatui.screens", "hatui.widgets", "textual"},
     "the etcd adapter serves the daemon, the CLI and the console, and knows none of them"),
    ("hatui.daemon", {"hatui.cli"}, "the daemon runs without the CLI (the CLI starts it, not the reverse)"),
    ("hatui.screens", {"hatui.cli"}, "the console never reaches into the CLI"),
    ("hatui", {"grpc", "etcd3", "google.protobuf"}, "etcd is reached through its JSON gateway: no gRPC at run time"),
]


def broken_rules(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for who, banned, why in RULES:
        for module, targets in sorted(graph.items()):
            if not _in(module, who):
                continue
            for target in sorted(targets):
                if any(_in(target, b) for b in banned):
                    problems.append(f"{module} imports {target} ({why})")
    return problems


GRAPH = read_imports()


def test_the_reader_sees_the_package() -> None:
    # A reader that found nothing would pass every rule: check it sees known edges.
    assert len(GRAPH) > 50
    assert "hatui.cluster" in GRAPH["hatui.etcd.store"]
    assert "hatui.daemon.requests" in GRAPH["hatui.daemon.api_backend"]
    assert "textual.app" in GRAPH["hatui.app"] or "textual" in GRAPH["hatui.app"]
    assert any(_in(t, "textual") for t in GRAPH["hatui.screens.cluster"])


def test_no_import_circle() -> None:
    found = circles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(
        "  " + " <-> ".join(group) + "\n" + "\n".join(
            f"      {m} imports {', '.join(sorted(GRAPH[m] & set(group)))}" for m in group)
        for group in found)


def test_no_import_across_a_rule() -> None:
    problems = broken_rules(GRAPH)
    assert not problems, "imports across the house rules:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("edges,expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
    ({"a": {"b", "x.external"}, "b": {"a"}}, [["a", "b"]]),
])
def test_circle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert circles(edges) == expected


def test_rule_checker_catches_a_daemon_importing_textual_and_a_widget_importing_etcd() -> None:
    graph = {"hatui.daemon.x": {"textual.app"}, "hatui.widgets.y": {"hatui.etcd.store"}, "hatui.views": {"hatui.etcd.store"}}
    assert broken_rules(graph) == [
        "hatui.daemon.x imports textual.app (the daemon runs headless: it never imports Textual)",
        "hatui.widgets.y imports hatui.etcd.store (a widget renders the model; it never talks to etcd)",
    ]
