"""The package's layout rules, checked on the source text (no import, so every backend agrees).

Private imports across subpackages. A subpackage is the first name below `keras_cmr`: the folder
`keras_cmr/losses/` is the subpackage `losses`, a top-level module such as `keras_cmr/saving.py`
is its own subpackage `saving`. A name is private when it starts with one underscore and is not
a dunder (`_common`, `_labels`; not `__version__`). An import is private when the module path
below `keras_cmr` holds a private part (`keras_cmr.losses._common`) or when `from ... import`
takes a private name (`from keras_cmr.datasets.container import _labels`). A private import is
allowed only inside the subpackage it points into (`keras_cmr/losses/pair_wise.py` may import
`keras_cmr.losses._common`); everywhere else the helper must be made public (shared helpers live
in `keras_cmr.utils`). Relative imports are resolved against the importing file's package.

File size. No file under `keras_cmr/` holds more than 400 lines: a longer file is a sign that
it does two jobs (docs/STYLE.md).

Layers. The subpackages are ranked (`RANKS`); a module imports, at the top or inside a
function alike, only its own subpackage and subpackages of a lower rank, and no chain of
imports between modules comes back to where it started. A deferred import is still an
import: it hides a cycle from Python, not from the reader.
"""

import ast
import collections
import pathlib

import pytest

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent / "keras_cmr"
MAX_LINES = 400
SOURCES = sorted(PACKAGE_ROOT.rglob("*.py"))


def is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_parts(path):
    """("keras_cmr", "losses", "pair_wise") for keras_cmr/losses/pair_wise.py."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def subpackage(parts):
    """The first name below keras_cmr (None for keras_cmr itself)."""
    return parts[1] if len(parts) > 1 else None


def private_imports(text, parts, is_package=False):
    """[(line, imported target, target's subpackage)]: private keras_cmr imports of a module.

    `parts` names the module (("keras_cmr", "losses", "pair_wise")); `is_package` when it is an
    `__init__.py`, whose relative imports start from the package itself.
    """
    package = parts if is_package else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            targets = [(alias.name.split("."), None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            targets = [(module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in targets:
            if not module or module[0] != "keras_cmr":
                continue
            if name is not None and len(module) == 1:  # `from keras_cmr import x`: a module
                module, name = module + [name], None
            if any(is_private(part) for part in module[1:]) or (
                    name is not None and is_private(name)):
                target = ".".join(module) + (f".{name}" if name else "")
                found.append((node.lineno, target, subpackage(module)))
    return found


def source_imports(path):
    return private_imports(path.read_text(), module_parts(path), path.name == "__init__.py")


def test_private_imports_are_found_in_every_form():
    module = ("keras_cmr", "losses", "pair_wise")
    text = "\n".join([
        "import numpy as np",                                       # not keras_cmr
        "from keras_cmr.losses import soft_contrastive",            # public
        "from keras_cmr import __version__",                        # dunder: public
        "from keras_cmr.losses._common import l2_normalize",        # line 4: private module
        "from ._common import EPSILON",                             # line 5: relative
        "from ..datasets.container import _labels",                 # line 6: private name
        "import keras_cmr.encoders._hub",                           # line 7: plain import
        "from keras_cmr import _version",                           # line 8: private module
    ])
    assert private_imports(text, module) == [
        (4, "keras_cmr.losses._common.l2_normalize", "losses"),
        (5, "keras_cmr.losses._common.EPSILON", "losses"),
        (6, "keras_cmr.datasets.container._labels", "datasets"),
        (7, "keras_cmr.encoders._hub", "encoders"),
        (8, "keras_cmr._version", "_version"),
    ]
    # In an __init__.py a relative import starts from the package itself.
    assert private_imports("from ._common import x", ("keras_cmr", "losses"), True) == [
        (1, "keras_cmr.losses._common.x", "losses")]
    assert len(SOURCES) > 40 and module_parts(PACKAGE_ROOT / "saving.py") == ("keras_cmr",
                                                                               "saving")


def test_no_private_name_is_imported_from_another_subpackage():
    violations = []
    for path in SOURCES:
        own = subpackage(module_parts(path))
        for line, target, target_package in source_imports(path):
            if target_package != own:
                violations.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line} imports "
                                  f"{target}")
    assert not violations, "private imports across subpackages:\n" + "\n".join(violations)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by job"


def method_name_tests(text, names):
    """[(line, name)]: comparisons (==, !=, in, not in) of a value with a method's name."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        constants = []
        for operand in operands:
            if isinstance(operand, (ast.Tuple, ast.List, ast.Set)):
                constants += operand.elts
            else:
                constants.append(operand)
        found += [(node.lineno, c.value) for c in constants
                  if isinstance(c, ast.Constant) and c.value in names]
    return found


def test_method_name_test_detector_sees_each_form():
    text = ("a == 'met'\nb in ('kim', 'x')\n'control' != c\nd == 'other'\n"
            "e = {'met': 1}\n")
    assert method_name_tests(text, {"met", "kim", "control"}) == [
        (1, "met"), (2, "kim"), (3, "control")]


@pytest.mark.parametrize("path", [p for p in SOURCES if "methods" not in p.parts],
                         ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_no_method_is_chosen_by_its_name_outside_the_registry(path):
    """Only keras_cmr/methods names methods in code: the rest asks the registry what a method
    needs (a source, a fit of its own), so a user's method is treated like a built-in one."""
    from keras_cmr import methods

    names = set(methods.available())
    assert method_name_tests(path.read_text(), names) == []


# Lowest first: a subpackage may import the subpackages of a lower rank only.
RANKS = {
    "failures": 0, "options": 0, "results": 0,
    "utils": 1,
    "datasets": 2, "distribution": 2, "losses": 2, "saving": 2, "statistics": 2,
    "evaluation": 3, "layers": 3,
    "callbacks": 4, "encoders": 4, "models": 4, "retrieval": 4,
    "linear": 5,
    "methods": 6,
    "config": 7,
    "experiment": 8,
    "cli": 9,
}
MODULES = {".".join(module_parts(path)) for path in SOURCES}


def imported_modules(text, parts, is_package=False):
    """[(line, module)]: the keras_cmr modules a module's text imports, deferred ones too.

    `from package import name` imports the module `package.name` when that is a module of
    `MODULES`, else `package` itself.
    """
    package = parts if is_package else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES
                       else module for alias in node.names]
        else:
            continue
        found += [(node.lineno, target) for target in targets
                  if target.split(".")[0] == "keras_cmr" and target != "keras_cmr"]
    return sorted(found)


def import_graph():
    """{module: {(line, imported module)}} over the package's sources."""
    graph = collections.defaultdict(set)
    for path in SOURCES:
        parts = module_parts(path)
        for line, target in imported_modules(path.read_text(), parts,
                                             path.name == "__init__.py"):
            if target != ".".join(parts):
                graph[".".join(parts)].add((line, target))
    return graph


def cycles(graph):
    """The import cycles of `graph` ({module: {(line, module)}}): each strongly connected
    set of two or more modules, sorted."""
    edges = {module: {target for _, target in targets} for module, targets in graph.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)


def test_imports_are_found_deferred_and_relative():
    text = "\n".join([
        "import numpy",                                             # not keras_cmr
        "from keras_cmr.datasets import noise",                     # line 2: a module
        "def f():",
        "    from keras_cmr.evaluation import evaluate_retrieval",  # line 4: deferred
        "    from . import protocol",                               # line 5: relative
        "from keras_cmr import losses",                             # line 6: a subpackage
    ])
    found = imported_modules(text, ("keras_cmr", "experiment", "run"))
    assert found == [(2, "keras_cmr.datasets.noise"), (4, "keras_cmr.evaluation"),
                     (5, "keras_cmr.experiment.protocol"), (6, "keras_cmr.losses")]


def test_cycle_finder_sees_a_deferred_cycle_and_nothing_else():
    graph = {"keras_cmr.a": {(1, "keras_cmr.b")}, "keras_cmr.b": {(9, "keras_cmr.c")},
             "keras_cmr.c": {(4, "keras_cmr.a")}, "keras_cmr.d": {(1, "keras_cmr.a")}}
    assert cycles(graph) == [["keras_cmr.a", "keras_cmr.b", "keras_cmr.c"]]
    del graph["keras_cmr.c"]
    assert cycles(graph) == []


def test_every_subpackage_is_ranked():
    assert {subpackage(module.split(".")) for module in MODULES} - {None} == set(RANKS)


def test_no_import_goes_up_or_across_the_ranks():
    violations = []
    for module, targets in import_graph().items():
        own = subpackage(module.split("."))
        for line, target in sorted(targets):
            other = subpackage(target.split("."))
            if own is not None and other != own and RANKS[other] >= RANKS[own]:
                violations.append(f"{module}:{line} imports {target} (rank {RANKS[own]} -> "
                                  f"{RANKS[other]})")
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)
