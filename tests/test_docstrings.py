"""Every ```python block in the `Example:` section of a public docstring runs.

Public objects are the names in `__all__` of the modules in `MODULES` (public names when a
module has no `__all__`),
plus the public methods and properties defined on those classes. This is the one runner of
docstring examples. A documented module that does not exist, or fails to import, is a failure.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import textwrap
import traceback
from types import ModuleType
from typing import Any

import pytest

from _fixtures import EXAMPLES_BACKEND

MODULES = (
    "transferkit",
    "transferkit.metrics",
    "transferkit.timing",
    "transferkit.datasets",
    "transferkit.models",
)

_EXAMPLE_HEADER = re.compile(r"^\s*Examples?:\s*$")
_SECTION_HEADER = re.compile(
    r"^\s*(Args|Arguments|Attributes|Returns|Yields|Raises|Note|Notes|Warning|Warnings|"
    r"See Also|References|Todo|Example|Examples)\s*:\s*$"
)
_FENCE_OPEN = re.compile(r"^\s*```\s*(python|py)\s*$")
_FENCE_CLOSE = re.compile(r"^\s*```\s*$")
_ANY_FENCE = re.compile(r"^\s*```")


def example_blocks(docstring: str | None) -> list[str]:
    """The dedented ```python blocks inside the `Example:`/`Examples:` sections."""
    if not docstring:
        return []
    blocks: list[str] = []
    in_example = False
    fence: list[str] | None = None  # lines of the open python fence
    other_fence = False  # inside a non-python fence
    for line in inspect.cleandoc(docstring).splitlines():
        if fence is not None:
            if _FENCE_CLOSE.match(line):
                blocks.append(textwrap.dedent("\n".join(fence)))
                fence = None
            else:
                fence.append(line)
            continue
        if other_fence:
            other_fence = not _FENCE_CLOSE.match(line)
            continue
        if _EXAMPLE_HEADER.match(line):
            in_example = True
        elif _SECTION_HEADER.match(line):
            in_example = False
        elif in_example and _FENCE_OPEN.match(line):
            fence = []
        elif _ANY_FENCE.match(line):
            other_fence = True
    if fence is not None:
        raise ValueError("unterminated ```python block in an Example section")
    return blocks


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods, class/static methods and properties defined on `cls` itself."""
    out = []
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if isinstance(attr, property) or inspect.isroutine(attr):
            out.append((name, attr))
    return out


def _public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return list(names)


def _import_or_none(name: str) -> ModuleType | None:
    """The module, or None when it does not exist. Other import errors propagate."""
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:  # a parent package is missing
        return None
    return importlib.import_module(name)


def collect(modules: tuple[str, ...] = MODULES) -> tuple[list[Any], dict[str, str]]:
    """pytest params (qualified name, code blocks) and {module: import error or skip reason}."""
    params: list[Any] = []
    problems: dict[str, str] = {}
    seen: set[int] = set()
    for module_name in modules:
        try:
            module = _import_or_none(module_name)
        except Exception:  # reported by test_documented_modules_import
            problems[module_name] = traceback.format_exc()
            continue
        if module is None:  # a documented module that disappeared is a failure, not a skip
            problems[module_name] = f"{module_name} does not exist"
            continue
        for name in _public_names(module):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants: their __doc__ is their type's
            candidates = [(f"{module_name}.{name}", obj)]
            if inspect.isclass(obj):
                candidates += [
                    (f"{module_name}.{name}.{member}", attr) for member, attr in _members(obj)
                ]
            for qualname, target in candidates:
                if id(target) in seen:  # re-exported under another module
                    continue
                seen.add(id(target))
                blocks = example_blocks(getattr(target, "__doc__", None))
                if blocks:
                    params.append(pytest.param(qualname, blocks, id=qualname))
    return params, problems


PARAMS, IMPORT_PROBLEMS = collect()


def test_documented_modules_import():
    assert IMPORT_PROBLEMS == {}, "\n\n".join(IMPORT_PROBLEMS.values())


def test_a_missing_documented_module_is_a_failure():
    params, problems = collect(("transferkit.timing", "transferkit.no_such_module"))
    assert problems == {"transferkit.no_such_module": "transferkit.no_such_module does not exist"}
    assert params and all(p.id.startswith("transferkit.timing.") for p in params)


def test_core_api_examples_are_collected():
    ids = {p.id for p in PARAMS}
    core = {
        "freeze",
        "unfreeze",
        "frozen",
        "trainable_summary",
        "replace_head",
        "as_feature_extractor",
        "copy_model",
        "leaf_layers",
    }
    assert {f"transferkit.{name}" for name in core} <= ids


EXAMPLE_REQUIRED = MODULES[1:]
"""Modules whose every public class and function shows an `Example:`."""


@pytest.mark.parametrize("module_name", EXAMPLE_REQUIRED)
def test_every_public_class_and_function_has_an_example(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in _public_names(module)
        if (inspect.isclass(getattr(module, name)) or inspect.isroutine(getattr(module, name)))
        and not example_blocks(getattr(module, name).__doc__)
    ]
    assert missing == []


def asserts(code: str) -> bool:
    """Whether `code` holds an `assert` statement (not the word in a comment or string)."""
    return any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code)))


def test_every_example_asserts_what_it_shows():
    silent = {p.id for p in PARAMS if not any(asserts(block) for block in p.values[1])}
    assert silent == set()  # an example that only shows a value cannot fail on a wrong one


def test_only_an_assert_statement_counts_as_asserting():
    assert asserts("x = 1\nassert x == 1")
    assert asserts("def check():\n    assert True")
    assert not asserts("x = 1  # assert x == 1")
    assert not asserts('print("assert x == 1")\nassertion = 2')
    assert not asserts("np.testing.assert_allclose(1.0, 1.0)")  # raises, but is not `assert`


@pytest.mark.backend(EXAMPLES_BACKEND, reason="usage examples run once in the matrix")
@pytest.mark.parametrize(("qualname", "blocks"), PARAMS)
def test_docstring_example_runs(qualname, blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, Any] = {"__name__": "__docstring_example__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"<{qualname} example {i}>", "exec"), namespace)


# --------------------------------------------------------------------------- the extractor


def test_example_blocks_extraction():
    def documented():
        """Do something.

        Args:
            x: ```python not code```

        Example:

        ```python
        a = 1
        if a:
            b = 2
        ```

        Some prose between blocks.
        ```text
        not python
        ```
        ```py
        c = 3
        ```

        Returns:
            Nothing.

        ```python
        outside_example = True
        ```
        """

    assert example_blocks(documented.__doc__) == ["a = 1\nif a:\n    b = 2", "c = 3"]
    assert example_blocks(None) == []
    assert example_blocks("No example here.") == []
    with pytest.raises(ValueError, match="unterminated"):
        example_blocks("Example:\n```python\nx = 1\n")
