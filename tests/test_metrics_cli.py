"""``ivif eval``: per-image CSV, mean ± std summary (Markdown or JSON), pairing by stem, errors."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from ivif.cli import main
from ivif.evaluation import evaluate
from ivif.io import write_image

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = ("a", "b", "c")


@pytest.fixture
def folders(tmp_path):
    """ir/, vi/ and fused/ with three 48×56 pairs paired by stem (fused is a blend)."""
    rng = np.random.default_rng(4)
    for name in NAMES:
        ir = rng.integers(0, 256, (48, 56), dtype=np.uint8)
        vi = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
        fused = ((ir[..., None].astype(int) + vi) // 2).astype(np.uint8)
        write_image(tmp_path / "ir" / f"{name}.png", ir)
        write_image(tmp_path / "vi" / f"{name}.png", vi)
        write_image(tmp_path / "fused" / f"{name}.png", fused)
    return tmp_path


def _run(folders, *extra):
    return main(
        [
            "eval",
            "--ir",
            str(folders / "ir"),
            "--vi",
            str(folders / "vi"),
            "--fused",
            str(folders / "fused"),
            "--no-progress",
            *extra,
        ]
    )


def test_csv_and_markdown_summary(folders, capsys):
    out = folders / "results.csv"
    assert _run(folders, "--metrics", "EN,MI", "SSIM", "-o", str(out)) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == list(NAMES)
    for row in rows:
        paths = (folders / d / f"{row['image']}.png" for d in ("ir", "vi", "fused"))
        expected = evaluate(*paths, metrics=["EN", "MI", "SSIM"])
        for name in ("EN", "MI", "SSIM"):
            assert float(row[name]) == expected[name]  # written at full precision
    printed = capsys.readouterr().out
    assert "convention `tang`" in printed and "mean ± sample std" in printed
    ens = [float(row["EN"]) for row in rows]
    assert f"| EN | ↑ | {np.mean(ens):.4f} ± {np.std(ens, ddof=1):.4f} |" in printed


def test_json_summary_names_the_convention(folders, capsys):
    assert _run(folders, "--convention", "vifb", "--metrics", "Qcv", "EN", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["convention"] == "vifb" and report["images"] == 3
    assert list(report["metrics"]) == ["Qcv", "EN"]
    assert report["metrics"]["Qcv"]["higher_is_better"] is False
    assert report["metrics"]["EN"]["n"] == 3
    assert report["failed"] == []


def test_missing_and_mismatched_files_are_reported(folders, capsys):
    (folders / "fused" / "c.png").unlink()  # a pair without fused image: noted, not an error
    write_image(folders / "fused" / "stray.png", np.zeros((48, 56), np.uint8))
    write_image(folders / "fused" / "b.png", np.zeros((40, 56), np.uint8))  # wrong size
    assert _run(folders, "--metrics", "EN") == 1
    err = capsys.readouterr().err
    assert "1 source pair(s) have no fused image" in err and "(c)" in err
    assert "stray.png: no infrared/visible pair named 'stray'" in err
    assert "b.png: image sizes differ" in err


def test_parallel_jobs_give_the_same_values(folders, tmp_path):
    serial, parallel = tmp_path / "serial.csv", tmp_path / "parallel.csv"
    assert _run(folders, "--metrics", "Qabf", "VIF", "-o", str(serial)) == 0
    assert _run(folders, "--metrics", "Qabf", "VIF", "-o", str(parallel), "--jobs", "2") == 0
    assert serial.read_text() == parallel.read_text()


def test_usage_errors_exit_with_code_2(folders, capsys):
    assert main(["eval", "--ir", str(folders / "ir"), "--no-progress"]) == 2
    assert "give --vi, --fused" in capsys.readouterr().err
    assert _run(folders, "--metrics", "Qcv") == 2  # a VIFB metric under the tang convention
    assert "exists in convention vifb" in capsys.readouterr().err
    assert _run(folders, "--jobs", "0") == 2
    empty = folders / "empty"
    empty.mkdir()
    assert main(["eval", "--ir", str(folders / "ir"), "--vi", str(folders / "vi"),
                 "--fused", str(empty)]) == 2  # fmt: skip
    assert "no fused images" in capsys.readouterr().err


def test_list_shows_every_metric_of_a_convention(capsys):
    assert main(["eval", "--list", "--convention", "tang2022"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("convention tang2022:")
    for name in ("EN", "Qabf", "MEF_SSIM", "MS_SSIM", "QSF", "FMI_w"):
        assert f" {name} " in printed
    assert "→0" in printed  # QSF is best at 0


def test_infinite_psnr_is_summarised_without_nan(tmp_path, capsys):
    image = np.random.default_rng(1).integers(0, 256, (48, 56), dtype=np.uint8)
    for folder in ("ir", "vi", "fused"):
        for name in ("x", "y"):
            write_image(tmp_path / folder / f"{name}.png", image)
    assert _run(tmp_path, "--metrics", "PSNR", "--json") == 0
    summary = json.loads(capsys.readouterr().out)["metrics"]["PSNR"]
    assert summary["mean"] == math.inf and summary["std"] == 0.0
