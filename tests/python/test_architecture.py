"""The package's structure: the import layers of pyproject.toml hold (no cycles, function-level
imports included), and no module uses another module's underscore names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "python" / "relcode"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT / "python").with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_uses() -> list[str]:
    """``from relcode.X import _name`` and ``X._name`` (X a relcode module imported by name)
    across modules; the compiled module ``relcode._native`` is the binding layer's own API."""
    found = []
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> relcode module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _resolve(mod, path.name == "__init__.py", node)
                if not src.startswith("relcode"):
                    continue
                for a in node.names:
                    full = f"{src}.{a.name}"
                    if (
                        a.name == "_native"
                        or (PKG.parent / Path(*full.split("."))).with_suffix(".py").exists()
                        or (PKG.parent / Path(*full.split("."))).is_dir()
                    ):
                        aliases[a.asname or a.name] = full
                    elif a.name.startswith("_") and not a.name.startswith("__") and src != mod:
                        found.append(f"{mod}: from {src} import {a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("relcode") and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases[node.value.id] != mod
                and not aliases[node.value.id].endswith("._native")
            ):
                found.append(f"{mod}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    assert private_uses() == []


def test_import_layers_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed")
    res = subprocess.run(
        [exe], cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "python")}
    )
    assert res.returncode == 0, res.stdout[-3000:]


def test_public_array_arguments_have_precise_types() -> None:
    """The public API's array arguments are typed (numpy.typing), not ``Any``."""
    import types
    import typing

    import relcode
    from relcode import channel, coding, pretrained, stream, streaming
    from relcode import format as fmt

    stub = types.SimpleNamespace(device=object, Tensor=object, nn=types.SimpleNamespace(Module=object))
    names = {"torch": stub, "SentenceTransformer": object}
    arrayish = {"q_mean", "q_std", "p_mean", "p_std", "message", "messages", "tensors", "u", "counters",
                "key", "array", "prior_mean", "prior_std", "sensitivity", "values", "ids", "mean",
                "std"}  # fmt: skip
    checked = 0
    for fn in (
        relcode.encode, channel.encode, channel.decode, channel.kl_bits, channel.message_bits, stream.normals,
        stream.ndtri, stream.philox4x32_10, pretrained.compress, pretrained.save_tensors, coding.Coder.encode,
        streaming.StreamEncoder.add, streaming.StreamEncoder.add_raw, fmt.Writer.encode_block,
        fmt.Writer.set_prior, fmt.Writer.add_raw, fmt.Layout.gather,
    ):  # fmt: skip
        hints = typing.get_type_hints(fn, localns=names)
        for name in set(hints) & arrayish:
            assert hints[name] is not typing.Any, f"{fn.__qualname__}({name}) is typed Any"
            checked += 1
    assert checked >= 30
