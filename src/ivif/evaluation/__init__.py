"""Fusion metrics of the MATLAB toolboxes papers use, behind one registry of named conventions.

>>> import ivif
>>> ivif.evaluate("ir.png", "vi.png", "fused.png")                 # Tang's default set
>>> ivif.evaluate(ir, vi, fused, metrics=["EN", "Qabf"], convention="vifb")
>>> [m.name for m in ivif.metrics("vifb")]

Conventions (``docs/metrics.md``): ``tang`` (default, Tang's current code), ``tang2022`` (the
code that produced many published tables, bugs included) and ``vifb`` (VIFB's per-channel code).
"""

# Importing the metric families registers them.
from ivif.evaluation import (
    feature_mi,
    gradient,
    information,
    statistical,
    structural,
    visual,
)
from ivif.evaluation.evaluate import evaluate, evaluate_arrays, metrics
from ivif.evaluation.inputs import SourceCache
from ivif.evaluation.registry import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    Convention,
    MetricInfo,
    conventions,
    get_convention,
)

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "Convention",
    "MetricInfo",
    "SourceCache",
    "conventions",
    "evaluate",
    "evaluate_arrays",
    "feature_mi",
    "get_convention",
    "gradient",
    "information",
    "metrics",
    "statistical",
    "structural",
    "visual",
]
