"""ivif — infrared–visible image fusion.

>>> import ivif
>>> fused = ivif.fuse("ir.png", "vi.png", method="laplacian")   # uint8 H×W or H×W×3
>>> ivif.methods()
>>> ivif.evaluate("ir.png", "vi.png", "fused.png")               # Tang's metrics, by default
>>> ivif.metrics("vifb")                                          # names, directions, definitions
"""

from ivif.api import DEFAULT_METHOD, fuse, load_pair, methods
from ivif.errors import InputError
from ivif.evaluation import MetricInfo, evaluate, metrics
from ivif.io import read_image, write_image

__version__ = "0.1.0"

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
