"""CPFusion speed and memory on a CPU: :mod:`method_speed` with CPFusion's settings.

Times :func:`ivif.api.fuse_arrays` on already loaded uint8 arrays (uint8 in, uint8 out: the
conversions to and from float, the fusion and the colour recombination; no file decoding or
encoding) for both variants at 640×480 (MSRS) and 1280×1024 (LLVIP), median of 21 runs after
3 warm-up runs, 2 torch threads; then resident memory in a fresh process fusing one 1280×1024
pair (after ``import ivif``, with the images loaded, and the peak during the fusion).

Run on a quiet machine (training jobs paused), from the repository root (extra arguments go to ``method_speed``):

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/cpfusion_speed.py

Writes ``benchmarks/results/cpfusion_speed.json`` and ``.md``.
"""

from __future__ import annotations

import sys

import method_speed

DEFAULTS = ["cpfusion", "--compare", "variant=official,legacy", "--repeats", "21", "--warmup", "3"]

if __name__ == "__main__":
    sys.argv[1:] = DEFAULTS + sys.argv[1:]
    method_speed.main()
