"""ivif — infrared–visible image fusion.

>>> import ivif
>>> fused = ivif.fuse("ir.png", "vi.png", method="laplacian")   # uint8 H×W or H×W×3
>>> ivif.methods()
>>> ivif.evaluate("ir.png", "vi.png", "fused.png")               # Tang's metrics, by default
>>> ivif.metrics("vifb")                                          # names, directions, definitions
"""

from typing import Any

from ivif.api import DEFAULT_METHOD, fuse, load_pair, methods
from ivif.errors import InputError
from ivif.io import read_image, write_image

__version__ = "0.1.0"

_EVALUATION = ("MetricInfo", "evaluate", "metrics")


def __getattr__(name: str) -> Any:
    """The metrics API, imported on first use (it brings scipy: ~15 MiB that fusing never needs)."""
    if name in _EVALUATION:
        from ivif import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'ivif' has no attribute {name!r}")


__all__ = [
    "DEFAULT_METHOD",
    "InputError",
    "MetricInfo",
    "__version__",
    "evaluate",
    "fuse",
    "load_pair",
    "methods",
    "metrics",
    "read_image",
    "write_image",
]
