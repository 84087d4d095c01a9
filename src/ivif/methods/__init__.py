"""Fusion methods behind one registry: ``create_method("laplacian", levels=5)``."""

from ivif.methods import (
    classic,  # noqa: F401  (registers the baselines)
    cpfusion,  # noqa: F401  (registers CPFusion)
    difcdfusion,  # noqa: F401  (registers Dif-CDFusion)
    hclfuse,  # noqa: F401  (registers HCLFuse)
)
from ivif.methods.base import (
    FusionMethod,
    available_methods,
    create_method,
    get_method,
    option,
    option_specs,
    register,
)

__all__ = [
    "FusionMethod",
    "available_methods",
    "create_method",
    "get_method",
    "option",
    "option_specs",
    "register",
]
