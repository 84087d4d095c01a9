"""The command line: single pairs, folders, bad input (exit code 2, one line, no output file)."""

import subprocess
import sys

import numpy as np
import pytest

from ivif.cli import main
from ivif.io import read_image, write_image

RNG = np.random.default_rng(5)


@pytest.fixture
def pair(tmp_path):
    ir = write_image(tmp_path / "ir.png", RNG.integers(0, 256, (30, 41), dtype=np.uint8))
    vi = write_image(tmp_path / "vi.jpg", RNG.integers(0, 256, (30, 41, 3), dtype=np.uint8))
    return ir, vi


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivif: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_fuse_pair(pair, tmp_path, capsys):
    out = tmp_path / "f.png"
    code, stdout, _ = run(
        [
            "fuse",
            str(pair[0]),
            str(pair[1]),
            "-o",
            str(out),
            "--method",
            "laplacian",
            "--levels",
            "2",
        ],
        capsys,
    )
    assert code == 0 and "wrote" in stdout
    assert read_image(out).shape == (30, 41, 3)


def test_method_options_change_the_result(pair, tmp_path, capsys):
    outputs = []
    for rule in ("max_abs", "average"):
        out = tmp_path / f"{rule}.png"
        assert (
            run(
                ["fuse", *map(str, pair), "-o", str(out), "-m", "laplacian", "--detail-rule", rule],
                capsys,
            )[0]
            == 0
        )
        outputs.append(read_image(out))
    assert not np.array_equal(*outputs)


def test_missing_file(pair, tmp_path, capsys):
    out = tmp_path / "f.png"
    code, _, err = run(["fuse", str(tmp_path / "nope.png"), str(pair[1]), "-o", str(out)], capsys)
    assert_user_error(code, err, "nope.png", "no such file")
    assert not out.exists()


def test_corrupt_file(pair, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out = tmp_path / "f.png"
    code, _, err = run(["fuse", str(pair[0]), str(bad), "-o", str(out)], capsys)
    assert_user_error(code, err, "bad.png", "not a readable image")
    assert not out.exists()


def test_size_mismatch_names_both_sizes_and_resize_opts_in(pair, tmp_path, capsys):
    small = write_image(tmp_path / "small.png", RNG.integers(0, 256, (15, 20), dtype=np.uint8))
    out = tmp_path / "f.png"
    code, _, err = run(["fuse", str(small), str(pair[1]), "-o", str(out)], capsys)
    assert_user_error(code, err, "20×15", "41×30", "--resize")
    assert not out.exists()
    code, _, _ = run(["fuse", str(small), str(pair[1]), "-o", str(out), "--resize", "ir"], capsys)
    assert code == 0 and read_image(out).shape == (30, 41, 3)


def test_bad_option_value_and_unknown_method(pair, tmp_path, capsys):
    code, _, err = run(
        [
            "fuse",
            *map(str, pair),
            "-o",
            str(tmp_path / "f.png"),
            "-m",
            "laplacian",
            "--levels",
            "0",
        ],
        capsys,
    )
    assert_user_error(code, err, "levels")
    code, _, err = run(
        ["fuse", *map(str, pair), "-o", str(tmp_path / "f.png"), "-m", "nope"], capsys
    )
    assert_user_error(code, err, "unknown method 'nope'")


def make_folders(tmp_path, names, size=(24, 32)):
    for name in names:
        write_image(tmp_path / "ir" / f"{name}.png", RNG.integers(0, 256, size, dtype=np.uint8))
        write_image(
            tmp_path / "vi" / f"{name}.png", RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
        )
    return tmp_path / "ir", tmp_path / "vi"


def test_folders_with_a_failing_pair(tmp_path, capsys):
    ir_dir, vi_dir = make_folders(tmp_path, ["a", "b", "c"])
    (ir_dir / "b.png").write_bytes(b"garbage")  # corrupt
    write_image(ir_dir / "d.png", np.zeros((24, 32), np.uint8))  # no visible counterpart
    out = tmp_path / "out"
    code, stdout, err = run(
        ["fuse", "--ir", str(ir_dir), "--vi", str(vi_dir), "-o", str(out), "-m", "average"], capsys
    )
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert "2 fused" in stdout and "2 failed" in stdout
    assert "b.png" in err and "d.png" in err and "Traceback" not in err


def test_folders_skip_existing_unless_overwrite(tmp_path, capsys):
    ir_dir, vi_dir = make_folders(tmp_path, ["a", "b"])
    out = tmp_path / "out"
    args = ["fuse", "--ir", str(ir_dir), "--vi", str(vi_dir), "-o", str(out), "-m", "average"]
    assert run(args, capsys)[0] == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    code, stdout, _ = run(args, capsys)
    assert code == 0 and "0 fused, 2 already present" in stdout
    assert (out / "a.png").stat().st_mtime_ns == stamp
    code, stdout, _ = run([*args, "--overwrite"], capsys)
    assert code == 0 and "2 fused" in stdout


def test_empty_and_missing_folders(tmp_path, capsys):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vi").mkdir()
    code, _, err = run(
        [
            "fuse",
            "--ir",
            str(tmp_path / "ir"),
            "--vi",
            str(tmp_path / "vi"),
            "-o",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert_user_error(code, err, "no infrared images")
    code, _, err = run(
        [
            "fuse",
            "--ir",
            str(tmp_path / "x"),
            "--vi",
            str(tmp_path / "vi"),
            "-o",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert_user_error(code, err, "infrared folder not found")
    assert not (tmp_path / "o").exists()


def test_mixed_modes_are_rejected(pair, tmp_path, capsys):
    code, _, err = run(
        [
            "fuse",
            str(pair[0]),
            str(pair[1]),
            "--ir",
            str(tmp_path),
            "--vi",
            str(tmp_path),
            "-o",
            "x",
        ],
        capsys,
    )
    assert_user_error(code, err, "not both")
    code, _, err = run(["fuse", str(pair[0]), "-o", "x"], capsys)
    assert_user_error(code, err, "give an infrared and a visible image")


def test_methods_lists_options(capsys):
    code, stdout, _ = run(["methods"], capsys)
    assert code == 0 and "laplacian" in stdout and "--detail-rule" in stdout


def test_console_script_exit_code(tmp_path):
    ivif = [sys.executable, "-m", "ivif"]
    result = subprocess.run(
        [
            *ivif,
            "fuse",
            str(tmp_path / "a.png"),
            str(tmp_path / "b.png"),
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert (
        result.returncode == 2
        and "a.png: no such file" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_closed_pipe_is_quiet():
    """``ivif methods | head -1``: the reader leaving early is not an error worth a traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "ivif", "methods"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        process.stdout.close()  # gone before the first write (importing ivif takes longer)
        stderr = process.stderr.read().decode()
    assert process.returncode == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
