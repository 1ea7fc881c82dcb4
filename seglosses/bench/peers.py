"""The optional peer libraries (imported on demand, a missing or broken one skipped with a note) and ours."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import warnings
from typing import Any, Optional

PEER_MODULES = {
    "smp": "segmentation_models_pytorch",
    "torchvision": "torchvision",
    "kornia": "kornia",
    "monai": "monai",
    "keras": "keras",  # timed on its torch backend (KERAS_BACKEND=torch), so on the same tensors and autograd
}


class Peers:
    """Access to the optional peer libraries.

    ``eager`` (the main process): ``available`` imports the library, so that a broken installation is skipped with a
    note. Otherwise (memory workers) it only looks the module up, and ``get`` imports the one library needed.
    """

    def __init__(self, eager: bool = True) -> None:
        self.eager = eager
        self._mods: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def available(self, name: str) -> bool:
        if name in self.errors:
            return False
        if name in self._mods:
            return True
        try:
            found = importlib.util.find_spec(PEER_MODULES[name]) is not None
            if not found:
                self.errors[name] = "not installed"
            elif self.eager:
                self.get(name)
        except Exception as exc:  # a broken installation
            self.errors[name] = f"import failed: {type(exc).__name__}: {exc}"
            return False
        return found

    def get(self, name: str) -> Any:
        if name not in self._mods:
            if name == "keras":
                os.environ.setdefault("KERAS_BACKEND", "torch")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(PEER_MODULES[name])
            if name == "keras" and mod.backend.backend() != "torch":
                raise RuntimeError(f"keras runs on the {mod.backend.backend()!r} backend here; the benchmark times it "
                                   "on 'torch' (unset KERAS_BACKEND or set it to torch)")
            self._mods[name] = mod
        return self._mods[name]

    @staticmethod
    def version(name: str) -> Optional[str]:
        try:
            return importlib.metadata.version(PEER_MODULES[name])
        except Exception:
            return None


def load_ours() -> tuple[Any, Optional[str]]:
    try:
        import seglosses  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a package half-written
        return None, f"{type(exc).__name__}: {exc}"
    return seglosses, None

