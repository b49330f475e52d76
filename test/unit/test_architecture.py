"""The package's imports go one way, top to bottom, with no cycle (no ROS, no imports executed).

Every module of ``hearing_hands_ros`` is parsed with ``ast``; every ``import`` and
``from ... import`` anywhere in it counts, inside functions too, relative ones resolved. An import
of a package counts as an import of its ``__init__``; ``from package import name`` counts as an
import of the module ``package.name`` when there is one. Each module belongs to a layer (below);
an import may go to the same layer or a lower one, and the module graph has no cycle.
"""
from __future__ import annotations

import ast
import fnmatch
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = 'hearing_hands_ros'

#: Layers, top (1) to bottom (4). Patterns match module names relative to the package ('' is the
#: package's own __init__); 'x.*' matches the modules of package x, 'x' the package itself.
LAYERS: dict[int, tuple[str, ...]] = {
    1: ('cli', 'demo', 'nodes', 'nodes.*'),
    2: ('planner', 'train', 'train.*', 'eval', 'eval.*', 'report'),
    3: ('models', 'models.*', 'data', 'data.*', 'automask', 'detector_pipeline'),
    4: ('', 'audio', 'images', 'trajectory', 'runtime', 'sim', 'sim.*', 'ros_convert', 'paths',
        'errors', 'overlay', 'events', 'monitor'),
}
LAYER_NAMES = {1: 'nodes and CLI', 2: 'planner, training and evaluation', 3: 'models and data',
               4: 'core'}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def where(self, root: Path, pkg: str) -> str:
        return f'{module_file(self.source, root, pkg).relative_to(root.parent)}:{self.line}'


# --- the module graph ---------------------------------------------------------------------------
def module_name(path: Path, root: Path, pkg: str) -> str:
    """``root/a/b.py`` -> ``pkg.a.b``; ``root/a/__init__.py`` -> ``pkg.a``."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join([pkg, *parts])


def module_file(name: str, root: Path, pkg: str) -> Path:
    """Inverse of :func:`module_name`."""
    rel = Path(*name.split('.')[1:])
    init = root / rel / '__init__.py'
    return init if init.is_file() else (root / rel).with_suffix('.py')


def package_modules(root: Path, pkg: str) -> dict[str, Path]:
    return {module_name(p, root, pkg): p for p in sorted(root.rglob('*.py'))
            if '__pycache__' not in p.parts}


def _known(name: str, modules) -> str | None:
    """The longest prefix of dotted ``name`` that is a module of the package (None: none is)."""
    parts = name.split('.')
    for n in range(len(parts), 0, -1):
        candidate = '.'.join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def imports_of(name: str, path: Path, modules) -> list[Edge]:
    """The package modules that module ``name`` (file ``path``) imports, anywhere in the file."""
    is_package = path.name == '__init__.py'
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [_known(a.name, modules) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split('.')
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                sub = f'{module}.{alias.name}'
                targets.append(sub if sub in modules else _known(module, modules))
        edges += [Edge(name, t, node.lineno) for t in targets if t is not None and t != name]
    return edges


def module_graph(root: Path, pkg: str) -> tuple[dict[str, Path], list[Edge]]:
    modules = package_modules(root, pkg)
    edges = [e for name, path in modules.items() for e in imports_of(name, path, modules)]
    return modules, edges


def layer_of(name: str, pkg: str, layers=LAYERS) -> int | None:
    rel = name[len(pkg) + 1:] if name != pkg else ''
    for layer, patterns in layers.items():
        if any(fnmatch.fnmatchcase(rel, p) for p in patterns):
            return layer
    return None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None (depth-first, colouring)."""
    state: dict[str, int] = {}                  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def upward_edges(edges: list[Edge], pkg: str, layers=LAYERS) -> list[Edge]:
    return [e for e in edges
            if None not in (layer_of(e.source, pkg, layers), layer_of(e.target, pkg, layers))
            and layer_of(e.target, pkg, layers) < layer_of(e.source, pkg, layers)]


# --- the package --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _package():
    return module_graph(ROOT / PKG, PKG)


def test_every_module_has_a_layer():
    modules, _ = _package()
    unplaced = sorted(m for m in modules if layer_of(m, PKG) is None)
    assert not unplaced, ('modules without a layer (add them to LAYERS in test_architecture.py): '
                          + ', '.join(unplaced))


def test_imports_never_go_up_a_layer():
    modules, edges = _package()
    bad = upward_edges(edges, PKG)
    assert not bad, 'imports that go up a layer:\n' + '\n'.join(
        f'  {e.where(ROOT / PKG, PKG)}: {e.source} ({LAYER_NAMES[layer_of(e.source, PKG)]}) '
        f'imports {e.target} ({LAYER_NAMES[layer_of(e.target, PKG)]})' for e in bad)


def test_module_graph_has_no_cycle():
    modules, edges = _package()
    graph = {m: set() for m in modules}
    for e in edges:
        graph[e.source].add(e.target)
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_graph_sees_imports_the_package_is_known_to_make():
    """The parser finds top-level, in-function and relative imports of this package."""
    _, edges = _package()
    pairs = {(e.source, e.target) for e in edges}
    assert (f'{PKG}.sim.world', f'{PKG}.sim.actions') in pairs            # from . import actions
    assert (f'{PKG}.models.look_match', f'{PKG}.runtime') in pairs        # in a function, ..runtime
    assert (f'{PKG}.report', f'{PKG}.audio') in pairs                     # from pkg import audio


def test_shared_errors_have_one_home():
    """cli.UserError and runtime.ModelError are the classes of errors, not copies."""
    from hearing_hands_ros import cli, errors, runtime
    assert cli.UserError is errors.UserError and runtime.ModelError is errors.ModelError
    assert 'hearing_hands_ros.errors:UserError' in cli.USER_ERRORS
    assert 'hearing_hands_ros.errors:ModelError' in cli.USER_ERRORS


# --- the checker itself, on a made-up package ---------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_checker_names_an_upward_edge_inside_a_function_and_a_cycle(tmp_path):
    root = _write(tmp_path / 'pkg', {
        '__init__.py': '',
        'core.py': 'def f():\n    from .top import g\n',
        'top.py': 'from pkg import core\nimport os\n',
        'sub/__init__.py': 'from . import leaf\n',
        'sub/leaf.py': 'from ..core import f\nfrom pkg.sub import leaf as again\n',
    })
    layers = {1: ('top',), 2: ('', 'core', 'sub', 'sub.*')}
    modules, edges = module_graph(root, 'pkg')
    assert set(modules) == {'pkg', 'pkg.core', 'pkg.top', 'pkg.sub', 'pkg.sub.leaf'}
    assert {(e.source, e.target) for e in edges} == {
        ('pkg.core', 'pkg.top'), ('pkg.top', 'pkg.core'), ('pkg.sub', 'pkg.sub.leaf'),
        ('pkg.sub.leaf', 'pkg.core')}
    [bad] = upward_edges(edges, 'pkg', layers)
    assert (bad.source, bad.target, bad.line) == ('pkg.core', 'pkg.top', 2)
    graph = {m: {e.target for e in edges if e.source == m} for m in modules}
    assert find_cycle(graph) == ['pkg.core', 'pkg.top', 'pkg.core']
    graph['pkg.core'] = set()
    assert find_cycle(graph) is None
