"""The HTML report rendered in a real browser (headless Chromium): images load, tables show."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from ivif.bench import BenchConfig, run_benchmark, write_outputs
from ivif.data import resolve_dataset
from ivif.io import write_image

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]


def _install_chromium() -> str | None:
    """Install Debian's chromium when absent (root with apt-get only)."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(
            ["apt-get", "update", "-qq"], check=True, capture_output=True, env=env, timeout=600
        )
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            capture_output=True,
            env=env,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or _install_chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed and could not be installed with apt-get")
    return browser


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(2)
    for name in ("p1", "p2"):
        write_image(
            root / "data" / "ir" / f"{name}.png", rng.integers(0, 256, (48, 64), dtype=np.uint8)
        )
        write_image(
            root / "data" / "vi" / f"{name}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        )
    config = BenchConfig(
        datasets=[resolve_dataset(str(root / "data"))],
        methods=["average", "laplacian"],
        output=root / "out",
        metrics=["EN", "SD", "AG"],
        jobs=1,
        progress=False,
    )
    return write_outputs(run_benchmark(config))["report"]


def test_report_renders_with_images_and_tables(chromium, report, tmp_path):
    url = report.resolve().as_uri()
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile-dom'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, "the page's load check did not run"
    # 2 pairs × (IR, VI, 2 methods) × (tile + zoom) + metric plot + speed plot
    assert int(total.group(1)) == 2 * 4 * 2 + 2
    assert loaded.group(1) == total.group(1)
    assert '<table class="metrics">' in dom and "average" in dom and "EN ↑" in dom

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"
