"""The metric registry: named conventions, and one entry per (metric, convention).

A *convention* is one toolbox's semantics (``spec/metrics.md`` §4): which source is A, how colour
is handled, and which formula each name stands for. The same canonical name (``SD``, ``MI``,
``SSIM``…) can therefore have a different entry in each convention; every entry says what it
computes and where the definition comes from, and every number ivif prints names its convention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ivif.errors import InputError

if TYPE_CHECKING:
    from ivif.evaluation.inputs import MetricInputs

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "Convention",
    "MetricInfo",
    "conventions",
    "get_convention",
    "metric_entry",
    "metric_infos",
    "register",
    "resolve_names",
]

MetricFunction = Callable[["MetricInputs"], float]


@dataclasses.dataclass(frozen=True)
class Convention:
    """One toolbox's semantics.

    ``sources`` names A and B as the toolbox passes them; ``colour`` is ``"per-channel"`` (every
    metric per RGB channel, then averaged) or ``"gray"`` (MATLAB ``rgb2gray`` on uint8 first).
    ``default`` is the metric set :func:`ivif.evaluate` computes when none is named.
    """

    name: str
    summary: str
    sources: tuple[str, str]
    colour: str
    default: tuple[str, ...]
    reference: str


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """What a metric means in one convention (``ivif.metrics(convention)`` lists these).

    ``ideal`` is set when the best value is not an extreme (QSF is best at 0);
    ``higher_is_better`` then describes |value − ideal| growing as worse.
    """

    name: str
    higher_is_better: bool
    definition: str
    convention: str
    source: str
    toolbox_name: str | None = None
    validated: bool = False
    min_size: int = 1
    ideal: float | None = None


@dataclasses.dataclass(frozen=True)
class MetricEntry:
    info: MetricInfo
    compute: MetricFunction


CONVENTIONS: dict[str, Convention] = {
    convention.name: convention
    for convention in (
        Convention(
            name="tang",
            summary="Tang's current MATLAB toolbox (2023): grey images, A = IR, B = VI, MI in bits",
            sources=("ir", "vi"),
            colour="gray",
            default=("EN", "MI", "SD", "SF", "AG", "PSNR", "MSE", "VIF", "CC", "SCD", "Qabf"),
            reference="Linfeng-Tang/Image-Fusion, 'General Evaluation Metric' (2023-03 code)",
        ),
        Convention(
            name="tang2022",
            summary="Tang's 2022 toolbox that wrote Metric_TNO.xlsx, its bugs included",
            sources=("ir", "vi"),
            colour="gray",
            default=("EN", "MI", "SD", "SF", "AG", "PSNR", "MSE", "VIF", "CC", "SCD", "Qabf"),
            reference="Linfeng-Tang/Image-Fusion, 'General Evaluation Metric' (commit 53f5542)",
        ),
        Convention(
            name="vifb",
            summary="VIFB's MATLAB code: per RGB channel, A = VI, B = IR, MI in nats",
            sources=("vi", "ir"),
            colour="per-channel",
            default=(
                "AG",
                "CE",
                "EI",
                "EN",
                "MI",
                "PSNR",
                "Qabf",
                "Qcb",
                "Qcv",
                "RMSE",
                "SF",
                "SSIM",
                "SD",
            ),
            reference="xingchenzhang/VIFB, metrics/*.m (commit 22b2ea9); Zhang et al., CVPRW 2020",
        ),
    )
}

DEFAULT_CONVENTION = "tang"

_ENTRIES: dict[str, dict[str, MetricEntry]] = {name: {} for name in CONVENTIONS}
_ALIASES: dict[str, dict[str, str]] = {name: {} for name in CONVENTIONS}


def register(
    name: str,
    conventions: Iterable[str],
    *,
    higher_is_better: bool,
    definition: str,
    source: str,
    toolbox_name: str | None = None,
    validated: bool = False,
    min_size: int = 1,
    ideal: float | None = None,
) -> Callable[[MetricFunction], MetricFunction]:
    """Register ``fn(inputs) -> float`` as metric ``name`` in each of ``conventions``.

    ``toolbox_name`` (e.g. VIFB's ``"Avg_gradient"``) is accepted as an alias.
    ``validated`` says whether the entry reproduces published reference values (the conformance
    tests check those); ``min_size`` is the smallest height and width it accepts; ``ideal`` is
    the best value when it is not an extreme.
    """

    def decorator(fn: MetricFunction) -> MetricFunction:
        for convention in conventions:
            if convention not in CONVENTIONS:
                raise ValueError(f"unknown convention {convention!r}")
            if name in _ENTRIES[convention]:
                raise ValueError(f"metric {name!r} registered twice for {convention!r}")
            info = MetricInfo(
                name=name,
                higher_is_better=higher_is_better,
                definition=definition,
                convention=convention,
                source=source,
                toolbox_name=toolbox_name,
                validated=validated,
                min_size=min_size,
                ideal=ideal,
            )
            _ENTRIES[convention][name] = MetricEntry(info, fn)
            if toolbox_name and toolbox_name != name:
                _ALIASES[convention][toolbox_name.lower()] = name
        return fn

    return decorator


def get_convention(name: str) -> Convention:
    """The :class:`Convention` called ``name`` (an :class:`~ivif.errors.InputError` if unknown)."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise InputError(
            f"unknown metric convention {name!r}; choose from {', '.join(CONVENTIONS)}"
        ) from None


def conventions() -> list[str]:
    """Names of the conventions."""
    return list(CONVENTIONS)


def _ordered_names(convention: str) -> list[str]:
    """The convention's default metrics first (in their order), then the others by name."""
    default = get_convention(convention).default
    extra = sorted(set(_ENTRIES[convention]) - set(default), key=str.lower)
    return [*default, *extra]


def metric_infos(convention: str = DEFAULT_CONVENTION) -> list[MetricInfo]:
    """Every metric of ``convention``: the default set first, then the extras."""
    get_convention(convention)
    return [_ENTRIES[convention][name].info for name in _ordered_names(convention)]


def resolve_names(names: str | Iterable[str] | None, convention: str) -> list[str]:
    """Canonical metric names for a request: ``None`` is the convention's default set, ``"all"``
    every metric; names match case-insensitively, toolbox names are aliases. Order is kept."""
    get_convention(convention)
    if names is None:
        return list(CONVENTIONS[convention].default)
    if isinstance(names, str):
        names = _ordered_names(convention) if names.lower() == "all" else [names]
    by_lower = {name.lower(): name for name in _ENTRIES[convention]}
    resolved: list[str] = []
    for requested in names:
        key = str(requested).strip().lower()
        name = by_lower.get(key) or _ALIASES[convention].get(key)
        if name is None:
            other = [c for c in CONVENTIONS if key in {n.lower() for n in _ENTRIES[c]}]
            hint = f" (it exists in convention {', '.join(other)})" if other else ""
            raise InputError(
                f"unknown metric {requested!r} for convention {convention!r}{hint}; "
                f"choose from {', '.join(_ordered_names(convention))}"
            )
        if name not in resolved:
            resolved.append(name)
    if not resolved:
        raise InputError("no metrics requested")
    return resolved


def metric_entry(name: str, convention: str) -> MetricEntry:
    """The registered entry of a canonical ``name`` in ``convention``."""
    return _ENTRIES[convention][name]
