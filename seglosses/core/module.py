"""The thin ``nn.Module`` front end shared by every loss: settings in, one-line ``forward``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from seglosses.core.args import Mode, check_mode, check_values
from seglosses.core.compose import Composable, module_config

#: How the loss function's signature marks an option that may be a per-class vector (kept as a buffer): a sequence of
#: numbers or a tensor (``spacing``, a sequence but no tensor, and ``dist_maps``, a tensor but no sequence, are not).
_PER_CLASS_HINT = "Sequence[float] | torch.Tensor"


class LossModule(Composable, nn.Module):
    """Stores a loss function's keyword arguments; ``forward(logits, target)`` calls the function with them.

    Per-class vectors (the options the function annotates ``Sequence[float]``: ``weight``, the focal ``alpha``, ...)
    become buffers, so they follow ``.to()`` and appear in ``state_dict``; the call itself validates every argument, so a bad setting fails at the first call with the
    function's message (and at construction for the mode). Losses compose with ``+``, ``-``, ``*``, ``/``
    (:mod:`seglosses.core.compose`) and write themselves to a JSON-safe dict with :meth:`to_config`.

    Each subclass declares, for type checkers only (``if TYPE_CHECKING:``), its constructor ``(mode, *, <options>)``
    with the function's options, hints and defaults (tests/test_typing.py keeps them equal); at run time every
    subclass is this constructor, which keeps only the options given (``repr``, :meth:`to_config`).
    """

    #: The loss function, ``staticmethod(<name>_loss)`` in each subclass.
    _fn: Any = None
    #: :meth:`per_class_options`, read from ``_fn``'s signature when the subclass is defined.
    _per_class: tuple[str, ...] = ()
    #: Per-batch tensors the function takes that are inputs of ``forward``, not settings (``dist_maps``;
    #: ``pixel_weight`` is added to every loss whose function takes it).
    _inputs: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # read once from the function: the per-class options, and the signature help() and inspect.signature show,
        # (mode, *, <the function's options>), as type checkers see the declared constructor (the run-time one is
        # the generic (mode=None, **options) below)
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_fn") is not None:
            params = list(inspect.signature(cls._fn).parameters.values())[2:]
            if any(p.name == "pixel_weight" for p in params) and "pixel_weight" not in cls._inputs:
                cls._inputs = (*cls._inputs, "pixel_weight")  # a per-batch input of every loss that takes it
            cls._per_class = tuple(p.name for p in params if _PER_CLASS_HINT in str(p.annotation))
            shown = inspect.Signature([p for p in params if p.name not in cls._inputs])
            setattr(cls, "__signature__", shown)  # (read by inspect; not a declared attribute of type)

    def __init__(self, mode: Mode | None = None, **options: Any) -> None:
        super().__init__()
        if mode is not None:
            check_mode(mode)
        self.mode = mode
        self._options: dict[str, Any] = {}
        per_class = self.per_class_options()
        for key, value in options.items():
            if key in per_class and isinstance(value, torch.Tensor):
                self.register_buffer(key, value.clone() if value.is_floating_point() else value.double())
            elif key in per_class and isinstance(value, Sequence) and not isinstance(value, str):
                # the function's value checks, now (the buffer's are repeated at each CPU call); float64, as the
                # function takes a list: float64 input must not get float32-rounded weights
                self.register_buffer(key, torch.tensor(check_values(key, value, low=0.0, high=self._high(key)),
                                                       dtype=torch.float64))
            else:
                self._options[key] = value

    def _high(self, key: str) -> float | None:
        """The upper bound the function puts on the per-class option ``key`` (None: none)."""
        return None

    @classmethod
    def per_class_options(cls) -> tuple[str, ...]:
        """The options that may be per-class vectors: those the function's signature annotates
        ``Sequence[float] | torch.Tensor`` (a scalar option of the same name elsewhere, such as Tversky's ``alpha``,
        stays a setting)."""
        return cls._per_class

    @classmethod
    def keywords(cls) -> frozenset[str]:
        """The keyword names the loss function takes: its options and per-batch inputs (``dist_maps``)."""
        return frozenset(inspect.signature(cls._fn).parameters)

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments the function is called with (a new dict): the settings as given, then the per-class
        vectors, as the buffers that hold them."""
        return {**self._options, **self._buffers}

    def forward(self, logits: torch.Tensor, target: torch.Tensor, **inputs: torch.Tensor | None) -> torch.Tensor:
        """``loss(logits, target, mode, **options, **inputs)``; ``inputs`` are per-batch tensors some losses take
        (``pixel_weight``, ``dist_maps`` of :func:`seglosses.boundary_loss`)."""
        return type(self)._fn(logits, target, self.mode, **self.options, **inputs)

    def to_config(self) -> dict[str, Any]:
        """``{"class": name, "mode": mode, "options": {...}}``, JSON-safe; :func:`seglosses.from_config` reads it."""
        return module_config(self)

    def extra_repr(self) -> str:
        parts = [] if self.mode is None else [repr(self.mode)]
        parts += [f"{k}={v!r}" for k, v in self._options.items()]
        parts += [f"{k}=<buffer {tuple(b.shape)}>" for k in self.per_class_options()
                  if (b := self._buffers.get(k)) is not None]
        return ", ".join(parts)
