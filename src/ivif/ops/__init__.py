"""Image operators shared by the fusion methods and the metrics, each written once."""

from ivif.ops.filters import (
    Border,
    check_image,
    filter2d,
    filter_separable,
    gaussian_kernel1d,
    neighbour_differences,
    pad,
    sobel,
)
from ivif.ops.histogram import entropy, histogram, joint_histogram
from ivif.ops.pyramid import (
    burt_adelson_kernel,
    expand,
    gaussian_pyramid,
    laplacian_pyramid,
    laplacian_synthesis,
    max_levels,
    reduce,
)
from ivif.ops.tiling import pad_to_multiple, tile_starts, tile_weights, tiled_apply
from ivif.ops.transport import histogram_sinkhorn, ot_align

__all__ = [
    "Border",
    "burt_adelson_kernel",
    "check_image",
    "entropy",
    "expand",
    "filter2d",
    "filter_separable",
    "gaussian_kernel1d",
    "gaussian_pyramid",
    "histogram",
    "histogram_sinkhorn",
    "joint_histogram",
    "laplacian_pyramid",
    "laplacian_synthesis",
    "max_levels",
    "neighbour_differences",
    "ot_align",
    "pad",
    "pad_to_multiple",
    "reduce",
    "sobel",
    "tile_starts",
    "tile_weights",
    "tiled_apply",
]
