"""How a package declares its face: one map of public names to the private modules that own them.

`declare` gives the package a PEP 562 ``__getattr__`` that imports the owner on first use (so importing a
sub-face costs nothing until a name is used, and sub-faces cannot form import circles through their
``__init__``), an ``__all__`` and a ``__dir__`` derived from the same map.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def declare(package: str, namespace: dict[str, Any], names: dict[str, str],
            subfaces: tuple[str, ...] = ()) -> None:
    """Install the face of ``package`` into its ``namespace``: ``names`` maps public name → private module.

    Args:
        package: the package's ``__name__``.
        namespace: the package's ``globals()``.
        names: ``{"Results": "._results", ...}``; modules are relative to the package.
        subfaces: sub-packages that are faces of their own (``pl.stats``), imported on first use.
    """
    namespace["__all__"] = sorted(names) + sorted(subfaces)
    namespace["__getattr__"] = _loader(package, namespace, names, subfaces)
    listed = sorted({*namespace["__all__"], *(["__version__"] if "__version__" in namespace else [])})
    namespace["__dir__"] = lambda: listed


def _loader(package: str, namespace: dict[str, Any], names: dict[str, str],
            subfaces: tuple[str, ...]) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name in subfaces:
            return import_module(f"{package}.{name}")
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}; the face lists "
                                 f"{namespace['__all__']}")
        value = getattr(import_module(names[name], package), name)
        namespace[name] = value  # later lookups skip this function
        return value

    return __getattr__
