"""The fusion-method interface, the method registry, and the colour policy shared by all methods.

A method is a :class:`FusionMethod` subclass registered by name with :func:`register`. Its options
are a dataclass (``Options``) whose fields carry a ``help`` text in their metadata; the CLI turns
them into flags and ``ivif methods`` documents them.

Colour policy (one place for every method):

* ``colour = "luminance"``: the method fuses gray planes. For colour visible input the visible
  BT.601 Cb/Cr (full range) are re-attached to the fused Y.
* ``colour = "native"``: the method receives the visible RGB and returns RGB itself.
* A gray visible image (one channel, or three identical channels) gives a gray result.
"""

from __future__ import annotations

import abc
import dataclasses
import typing
from typing import Any, ClassVar, Literal, TypeVar

import torch

from ivif.color import rgb_to_gray, rgb_to_ycbcr, ycbcr_to_rgb
from ivif.errors import InputError

__all__ = [
    "FusionMethod",
    "NoOptions",
    "available_methods",
    "create_method",
    "get_method",
    "option_specs",
    "register",
]


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A method without options."""


def option(default: Any, help: str) -> Any:
    """A documented option field: ``levels: int = option(4, "pyramid levels")``."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What the CLI and the docs need to know about one option."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


def option_specs(options_class: type) -> list[OptionSpec]:
    """Describe the fields of an ``Options`` dataclass (``Literal`` types become choices)."""
    hints = typing.get_type_hints(options_class)
    specs = []
    for field in dataclasses.fields(options_class):
        hint = hints[field.name]
        choices = None
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            hint = type(choices[0])
        specs.append(
            OptionSpec(field.name, hint, field.default, field.metadata.get("help", ""), choices)
        )
    return specs


class FusionMethod(abc.ABC):
    """Base class of every fusion method.

    Subclasses set ``name``, ``summary``, ``colour`` and ``Options`` and implement
    :meth:`fuse_planes`. Tensors are ``(1, C, H, W)`` float32 on ``[0, 1]``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    colour: ClassVar[Literal["luminance", "native"]] = "luminance"
    Options: ClassVar[type] = NoOptions
    #: Luma weights (:data:`ivif.color.LUMA_WEIGHTS`) used when the infrared file is colour.
    ir_luma: ClassVar[str] = "bt601"
    #: How the float result becomes uint8 (:func:`ivif.io.to_uint8`).
    rounding: Literal["round", "truncate"] = "round"

    def __init__(self, **options: Any) -> None:
        self.options = _build_options(self.name, self.Options, options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    def fuse(
        self, ir: torch.Tensor, vi: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Fuse an infrared ``(1, 1|3, H, W)`` and a visible ``(1, 1|3, H, W)`` image.

        Returns ``(1, 1, H, W)`` for gray visible input and ``(1, 3, H, W)`` for colour, on
        ``[0, 1]``.
        """
        if ir.shape[-2:] != vi.shape[-2:]:
            raise InputError(
                f"infrared {tuple(ir.shape[-2:])} and visible {tuple(vi.shape[-2:])} sizes differ"
            )
        ir = self.prepare_ir(ir)
        vi = _collapse_gray(vi)
        if self.colour == "native" or vi.shape[1] == 1:
            return self.fuse_planes(ir, vi, generator).clamp(0.0, 1.0)
        ycbcr = rgb_to_ycbcr(vi)
        fused_y = self.fuse_planes(ir, ycbcr[:, :1], generator)
        return ycbcr_to_rgb(torch.cat([fused_y, ycbcr[:, 1:]], dim=1)).clamp(0.0, 1.0)

    def prepare_ir(self, ir: torch.Tensor) -> torch.Tensor:
        """Reduce the infrared image to one channel: identical channels to one, colour-mapped
        files through :meth:`infrared_to_gray`."""
        collapsed = _collapse_gray(ir)
        return collapsed if collapsed.shape[1] == 1 else self.infrared_to_gray(ir)

    def infrared_to_gray(self, ir: torch.Tensor) -> torch.Tensor:
        """A colour-mapped ``(1, 3, H, W)`` infrared image to one channel (:attr:`ir_luma`)."""
        return rgb_to_gray(ir, self.ir_luma)

    @abc.abstractmethod
    def fuse_planes(
        self, ir: torch.Tensor, vi: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """The method itself. ``ir`` is ``(1, 1, H, W)``; ``vi`` is the visible luminance
        ``(1, 1, H, W)`` for ``colour = "luminance"``, or the visible image as given (1 or 3
        channels) for ``colour = "native"``. Returns a tensor shaped like ``vi`` (unclamped)."""


def _collapse_gray(x: torch.Tensor) -> torch.Tensor:
    """Keep one channel of a 3-channel image whose channels are identical."""
    if x.shape[1] == 3 and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2]):
        return x[:, :1]
    return x


def _build_options(method: str, options_class: type, given: dict[str, Any]) -> Any:
    specs = {spec.name: spec for spec in option_specs(options_class)}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        known = ", ".join(sorted(specs)) or "none"
        raise InputError(f"method {method!r} has no option {', '.join(unknown)} (options: {known})")
    values = {}
    for name, value in given.items():
        spec = specs[name]
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(map(str, spec.choices))
            raise InputError(f"{method}: option {name}={value!r} is not one of {allowed}")
        if spec.type in (int, float) and not isinstance(value, bool):
            try:
                value = spec.type(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"{method}: option {name} must be {spec.type.__name__}, got {value!r}"
                ) from None
        values[name] = value
    try:
        return options_class(**values)
    except ValueError as exc:
        raise InputError(f"{method}: {exc}") from None


_REGISTRY: dict[str, type[FusionMethod]] = {}
M = TypeVar("M", bound=type[FusionMethod])


def register(cls: M) -> M:
    """Class decorator: make a :class:`FusionMethod` available by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> type[FusionMethod]:
    """The class registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; available: {', '.join(_REGISTRY)}") from None


def create_method(name: str, **options: Any) -> FusionMethod:
    """An instance of method ``name`` with ``options``."""
    return get_method(name)(**options)
