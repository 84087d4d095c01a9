"""``ivif bench`` on a tiny generated dataset: outputs agree, caching, externals, resuming."""

import csv
import dataclasses
import re
import statistics

import numpy as np
import pytest

import ivif.bench.run as bench_run
import ivif.evaluation.batch as batch
from ivif.bench import BenchConfig, run_benchmark, write_outputs
from ivif.bench.tables import format_number
from ivif.cli import main
from ivif.data import resolve_dataset
from ivif.io import write_image

METRICS = ["EN", "SD", "SF", "AG", "Qabf"]
NAMES = ["a", "b", "c"]


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(11)
    root = tmp_path / "tiny"
    for name in NAMES:
        base = rng.integers(0, 256, (24, 32), dtype=np.uint8)
        write_image(root / "ir" / f"{name}.png", base)
        write_image(root / "vi" / f"{name}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return root


def make_config(dataset, out, **kwargs):
    options = {
        "methods": ["average", "laplacian"],
        "metrics": METRICS,
        "jobs": 1,
        "progress": False,
        "isolate": False,  # fusing in-process keeps the tests fast and lets them count calls
    }
    options.update(kwargs)
    return BenchConfig(datasets=[resolve_dataset(str(dataset))], output=out, **options)


@pytest.fixture
def count_calls(monkeypatch):
    calls = {"fuse": 0, "evaluate": 0}
    real_fuse, real_eval = bench_run.fuse_arrays, batch.evaluate_arrays

    def fuse(*args, **kwargs):
        calls["fuse"] += 1
        return real_fuse(*args, **kwargs)

    def evaluate(*args, **kwargs):
        calls["evaluate"] += 1
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(bench_run, "fuse_arrays", fuse)
    monkeypatch.setattr(batch, "evaluate_arrays", evaluate)
    return calls


def read_results(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_outputs_exist_and_agree(dataset, tmp_path):
    results = run_benchmark(make_config(dataset, tmp_path / "out"))
    paths = write_outputs(results)
    assert all(p.exists() for p in paths.values())
    rows = read_results(paths["results"])
    assert len(rows) == len(NAMES) * 2 * len(METRICS)
    assert {r["method"] for r in rows} == {"average", "laplacian"}
    timing = read_results(paths["timing"])
    assert len(timing) == len(NAMES) * 2 and all(float(r["seconds"]) > 0 for r in timing)
    summary = paths["summary"].read_text()
    assert "convention `tang`" in summary and "tiny" in summary
    for method in ("average", "laplacian"):
        line = next(
            line
            for line in summary.splitlines()
            if line.startswith(f"| {method} |") and "±" in line
        )
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        for metric, cell in zip(METRICS, cells, strict=True):
            mean = statistics.fmean(
                float(r["value"]) for r in rows if r["method"] == method and r["metric"] == metric
            )
            shown = re.sub(r"\*\*|</?u>", "", cell).split(" ± ")[0]
            assert shown == format_number(mean)
    # Exactly one best (bold) and one second (underlined) per metric column with two methods.
    table = "\n".join(
        line for line in summary.splitlines() if line.startswith("| ") and "±" in line
    )
    assert table.count("**") // 2 == len(METRICS) and table.count("<u>") == len(METRICS)


def test_cached_rerun_does_no_work(dataset, tmp_path, count_calls):
    config = make_config(dataset, tmp_path / "out")
    first = run_benchmark(config)
    assert count_calls == {"fuse": 6, "evaluate": 6}
    second = run_benchmark(config)
    assert count_calls == {"fuse": 6, "evaluate": 6}
    assert second.values == first.values and second.seconds == first.seconds
    run_benchmark(make_config(dataset, tmp_path / "out", overwrite=True))
    assert count_calls == {"fuse": 12, "evaluate": 12}  # re-fused files are re-evaluated


def test_external_folder_with_missing_image(dataset, tmp_path):
    external = tmp_path / "other"
    for name in NAMES[:2]:
        write_image(external / f"{name}.png", np.full((24, 32), 100, np.uint8))
    results = run_benchmark(
        make_config(dataset, tmp_path / "out", methods=["average"], externals={"Other": external})
    )
    paths = write_outputs(results)
    assert results.missing[("tiny", "Other")] == ["c"]
    assert "external `Other` is missing 1 image(s): c" in paths["summary"].read_text()
    rows = read_results(paths["results"])
    assert len([r for r in rows if r["method"] == "Other"]) == 2 * len(METRICS)


def test_interrupted_run_resumes(dataset, tmp_path, monkeypatch):
    real_fuse = bench_run.fuse_arrays
    calls = {"n": 0}

    def interrupt_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_fuse(*args, **kwargs)

    monkeypatch.setattr(bench_run, "fuse_arrays", interrupt_second)
    config = make_config(dataset, tmp_path / "out", methods=["laplacian"])
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config)
    fused_dir = tmp_path / "out" / "fused" / "tiny" / "laplacian"
    assert sorted(p.name for p in fused_dir.glob("*.png")) == ["a.png"]
    calls["n"] = 10  # no more interruptions
    results = run_benchmark(config)
    assert calls["n"] == 12  # only b and c were fused
    assert len(results.values) == 3


def test_parallel_workers_give_the_same_values(dataset, tmp_path):
    serial = run_benchmark(make_config(dataset, tmp_path / "serial", methods=["average"]))
    parallel = run_benchmark(
        make_config(dataset, tmp_path / "parallel", methods=["average"], jobs=2)
    )
    assert parallel.values == serial.values


def test_isolated_fusing_measures_the_method_not_the_benchmark_process(dataset, tmp_path):
    """With ``isolate`` each method fuses in a fresh process: a large buffer held by the
    benchmark process shows in the in-process peak but not in the isolated one."""
    status = bench_run._memory_status()
    if status is None:
        pytest.skip("needs /proc/self/status (Linux)")
    held = np.ones(600 * 2**20, dtype=np.uint8)  # 600 MB, touched
    own_rss = bench_run._memory_status()["VmRSS"]
    runs = {}
    for isolate in (True, False):
        config = make_config(dataset, tmp_path / str(isolate), methods=["average"])
        results = run_benchmark(dataclasses.replace(config, isolate=isolate))
        runs[isolate] = results.memory[(results.config.datasets[0].name, "average")]
    assert runs[False]["peak_rss_mb"] >= own_rss - 1 > 600  # figures are rounded to 0.1 MB
    assert runs[True]["peak_rss_mb"] < own_rss - 400
    assert held[-1] == 1
    # Both ways write the same images.
    for name in NAMES:
        isolated, in_process = (
            next((tmp_path / str(isolate) / "fused").glob(f"*/average/{name}.png"))
            for isolate in (True, False)
        )
        assert isolated.read_bytes() == in_process.read_bytes()


def test_cli(dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "bench",
            str(dataset),
            "--methods",
            "average",
            "--metrics",
            "EN,SD",
            "-o",
            str(out),
            "--jobs",
            "1",
        ]
    )
    assert code == 0 and (out / "index.html").exists() and (out / "summary.md").exists()
    assert "index.html" in capsys.readouterr().out
    assert main(["bench", str(dataset), "--methods", "nope", "-o", str(out)]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["bench", str(dataset), "--external", "bad", "-o", str(out)]) == 2
    assert "NAME=DIR" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "nothing"), "-o", str(out)]) == 2
    assert "not a folder with ir/ and vi/" in capsys.readouterr().err
