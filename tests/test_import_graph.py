"""The package's import graph: no cycles, and the layers import only downwards.

Layers, lowest first: the foundation (settings, errors, artifact names), the stage modules
that take and return arrays and tables (audio, features, clustering, ..., models,
training, inference), then the layers that run them (pipeline, report), and the entry
points (api, cli). Function-level imports count as much as module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "moodscape"
LAYERS = {
    "foundation": ("moodscape", "moodscape.config", "moodscape.errors", "moodscape.artifacts", "moodscape.launch"),
    "stages": ("moodscape.audio", "moodscape.decoders", "moodscape.features", "moodscape.essentia_import", "moodscape.clustering",
               "moodscape.acoustic_names", "moodscape.labeling", "moodscape.evaluation", "moodscape.datasets", "moodscape.models",
               "moodscape.training", "moodscape.inference"),
    "runs": ("moodscape.pipeline", "moodscape.report"),
    "entry points": ("moodscape.api", "moodscape.cli", "moodscape.__main__"),
}


def module_name(path: Path) -> str:
    parts = ("moodscape", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def import_graph() -> nx.DiGraph:
    """Every module of the package, with an edge to each package module it imports."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(f"{target}."):
                    graph.add_edge(name, target)
    return graph


def layer_of(module: str) -> int:
    ranks = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes
             if module == prefix or module.startswith(f"{prefix}.")]
    assert ranks, f"{module} belongs to no layer: add it to LAYERS"
    return max(ranks)[1]


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph()


def test_no_import_cycle(graph):
    assert list(nx.simple_cycles(graph)) == []


def test_every_import_goes_to_the_same_or_a_lower_layer(graph):
    upward = [(source, target) for source, target in graph.edges if layer_of(target) > layer_of(source)]
    assert upward == []


def test_the_graph_sees_relative_and_function_level_imports(graph):
    assert graph.has_edge("moodscape.cli", "moodscape.pipeline.stages")  # imported inside the commands
    assert graph.has_edge("moodscape.pipeline.network", "moodscape.training.classify")  # "from ..training.classify"
