"""Optional dependencies: which extra brings which module, checked before a command starts.

relcode's core needs only numpy, tqdm and safetensors. Everything else is optional and comes
with an extra (``pip install 'relcode[image]'``); :data:`EXTRAS` is the one table of what each
extra provides (pyproject.toml lists the same packages, and a test keeps the two in step).
A command or function that needs an extra calls :func:`require` first, so a missing module
is one line saying what to install, never a traceback from deep inside.
"""

from __future__ import annotations

import importlib

from .errors import RelcodeError

__all__ = ["EXTRAS", "PACKAGES", "MissingDependencyError", "missing", "require"]

#: The importable modules each extra provides, by extra name.
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "image": ("torch", "PIL", "threadpoolctl"),
    "audio": ("torch", "threadpoolctl"),
    "pretrained": ("torch", "sentence_transformers", "transformers"),
    "demo": ("torch", "sklearn"),
    "bench": ("scipy", "torch", "matplotlib", "psutil"),
    "distributed": ("distributed",),
    "gpu": ("torch", "triton"),
}

#: The PyPI distribution that provides each module (where the two names differ).
PACKAGES: dict[str, str] = {
    "PIL": "Pillow",
    "sklearn": "scikit-learn",
    "distributed": "dask[distributed]",
    "sentence_transformers": "sentence-transformers",
}


class MissingDependencyError(RelcodeError, ImportError):
    """An optional module that a command or function needs is not installed."""


def missing(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported, in order."""
    out = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            out.append(m)
    return out


def require(extra: str, purpose: str, modules: tuple[str, ...] | None = None) -> None:
    """Raises :class:`MissingDependencyError` naming what to install when a module of
    ``extra`` (or just ``modules``, a subset of it) is missing; ``purpose`` says what needs
    it ("relcode image compress", "writing .pt files")."""
    need = EXTRAS[extra] if modules is None else modules
    gone = missing(need)
    if gone:
        names = ", ".join(PACKAGES.get(m, m) for m in gone)
        raise MissingDependencyError(f"{purpose} needs {names}: pip install 'relcode[{extra}]'")
