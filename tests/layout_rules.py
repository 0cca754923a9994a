"""The import rules of docs/architecture.md, checked by reading the sources (nothing is imported).

    problems = check_layout(root)     # [] when every rule holds

Rules:
1. No import circles among the library's modules, counting imports inside functions too
   (an import that has to hide in a function to work is still a circle).
2. Library code never imports a command module (`<package>.commands...`).
3. The renderer package imports no GUI toolkit (OpenGL, glfw, imgui_bundle) and nothing of
   `viz` or `gui_utils`.
4. Nothing outside tests/ imports from tests/.

Imports under `if __name__ == '__main__':` (they run only when the module is the program)
and under `if TYPE_CHECKING:` (they never run) are not counted.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Iterator

GUI_TOOLKITS = ('OpenGL', 'glfw', 'imgui_bundle', 'viz', 'gui_utils')
SOURCE_FOLDERS = ('renderer', 'viz', 'gui_utils', 'benchmarks')


def module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == '__name__'
            and any(isinstance(c, ast.Constant) and c.value == '__main__' for c in test.comparators))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING'
            or isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _import_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Import statements anywhere in the tree, except under a __main__ guard or TYPE_CHECKING."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and (_is_main_guard(child) or _is_type_checking(child)):
            for other in child.orelse:
                yield from _import_nodes(other) if not isinstance(other, (ast.Import, ast.ImportFrom)) else [other]
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        else:
            yield from _import_nodes(child)


def imports_of(root: pathlib.Path, path: pathlib.Path) -> set[str]:
    """Absolute names of the modules the file imports (`from pkg import sub` counts as pkg.sub when sub is a
    module of the tree, else as pkg)."""
    name = module_name(root, path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split('.')[:len(package.split('.')) - node.level + 1]
            target = '.'.join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        for alias in node.names:
            sub = f'{target}.{alias.name}'
            folder = root.joinpath(*sub.split('.'))
            found.add(sub if folder.with_suffix('.py').is_file() or (folder / '__init__.py').is_file() else target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:   # Tarjan's algorithm; the graphs are small enough for recursion.
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def check_layout(root: pathlib.Path, package: str = 'renderer') -> list[str]:
    """Every broken rule as a sentence naming the files; [] when the layout is sound."""
    root = pathlib.Path(root)
    files = [p for folder in SOURCE_FOLDERS if (root / folder).is_dir() for p in sorted((root / folder).rglob('*.py'))]
    files += [p for p in sorted(root.glob('*.py'))]
    tests = root / 'tests'
    test_modules = {module_name(tests, p) for p in tests.rglob('*.py')} if tests.is_dir() else set()
    graph = {module_name(root, p): imports_of(root, p) for p in files}
    problems = []
    library = {m: deps for m, deps in graph.items() if m.split('.')[0] == package}
    internal = {m: {d for d in deps if d in library} for m, deps in library.items()}
    for cycle in _cycles(internal):
        problems.append(f'import circle: {" -> ".join(cycle)}')
    commands = f'{package}.commands'
    for module, deps in sorted(library.items()):
        is_command = module == commands or module.startswith(commands + '.')
        for dep in sorted(deps):
            if not is_command and (dep == commands or dep.startswith(commands + '.')):
                problems.append(f'{module} (library) imports the command module {dep}')
            if dep.split('.')[0] in GUI_TOOLKITS:
                problems.append(f'{module} imports {dep}: the renderer must work without a GUI')
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if dep.split('.')[0] == 'tests' or dep.split('.')[0] in test_modules:
                problems.append(f'{module} imports {dep} from tests/')
    return problems
