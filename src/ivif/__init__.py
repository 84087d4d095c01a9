"""ivif — infrared–visible image fusion.

>>> import ivif
>>> fused = ivif.fuse("ir.png", "vi.png", method="laplacian")   # uint8 H×W or H×W×3
>>> ivif.methods()
"""

from ivif.api import DEFAULT_METHOD, fuse, load_pair, methods
from ivif.errors import InputError
from ivif.io import read_image, write_image

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_METHOD",
    "InputError",
    "__version__",
    "fuse",
    "load_pair",
    "methods",
    "read_image",
    "write_image",
]
