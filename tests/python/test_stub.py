"""The type stub of the native module lists exactly what the module exports."""

from __future__ import annotations

import ast
from pathlib import Path

import relcode
from relcode import _native


def stub_names() -> set[str]:
    tree = ast.parse((Path(relcode.__file__).parent / "_native.pyi").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_stub_matches_native_module() -> None:
    exported = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    assert stub_names() == exported


def test_package_is_typed() -> None:
    assert (Path(relcode.__file__).parent / "py.typed").exists()
