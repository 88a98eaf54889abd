"""The package's layering, read from the source with ast: core <- data <- models <- train / evaluate <- cli.

A module imports only from its own layer or those below; training and evaluation are peers that never
import each other (what both need lives below them), and no chain of imports leads back to where it began.
Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: dict[str, tuple[int, tuple[str, ...]]] = {
    "core": (0, ("hatl", "hatl.errors", "hatl.io", "hatl.config", "hatl.provenance", "hatl.text", "hatl.folds",
                 "hatl.landmarks", "hatl.keypoint_store", "hatl.experiment", "hatl.metrics", "hatl.devices")),
    "data": (1, ("hatl.datasets", "hatl.demo", "hatl.keypoints", "hatl.video", "hatl.normalise", "hatl.vocab", "hatl.lm",
                 "hatl.stats", "hatl.batches")),
    "models": (2, ("hatl.models",)),
    "train": (3, ("hatl.train",)),
    "evaluate": (3, ("hatl.evaluate",)),
    "cli": (4, ("hatl.cli",)),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer whose longest listed name is the module or a package above it."""
    best, length = None, -1
    for layer, (_, names) in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > length and (name != "hatl" or module == "hatl"):
                best, length = layer, len(name)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS in {__file__}"
    return best


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The hatl modules ``path`` imports (``from hatl.x import y`` counts as hatl.x.y when that is a module)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {m for m in found if m in modules and m != module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(SRC.joinpath("hatl").rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def test_every_import_points_down_or_sideways_and_train_and_evaluate_never_meet():
    wrong = []
    for module, targets in import_graph().items():
        layer = layer_of(module)
        rank = LAYERS[layer][0]
        for target in sorted(targets):
            other = layer_of(target)
            if LAYERS[other][0] > rank or (LAYERS[other][0] == rank and other != layer):
                wrong.append(f"{module} ({layer}) imports {target} ({other})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_parser_finds_real_imports():
    # the rules above are only worth something if the parser finds real imports
    graph = import_graph()
    assert "hatl.models.trained" in graph["hatl.evaluate.decode"]
    assert "hatl.train.recipe" in graph["hatl.train.cli"]
    assert layer_of("hatl.train.recipe") == "train" and layer_of("hatl") == "core" and layer_of("hatl.batches") == "data"
