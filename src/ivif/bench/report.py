"""The self-contained HTML report: tables, per-image grids with a zoomed crop, a plot per metric
and a speed/quality plot. Every image is embedded, so ``index.html`` can be mailed or archived."""

from __future__ import annotations

import base64
import html
import io
import statistics
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from ivif.bench.run import BenchResults
from ivif.bench.tables import Cell, failure_groups, format_number, metric_table, timing_table
from ivif.evaluation import metrics
from ivif.io import read_image, to_tensor
from ivif.ops import filter_separable, sobel

__all__ = ["write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
td.best{font-weight:bold} td.second{text-decoration:underline}
.grid{display:flex;flex-wrap:wrap;gap:6px;margin:1em 0}
.tile{text-align:center;font-size:12px}
.tile img{display:block;max-width:200px}
.tile img.crop{margin-top:3px;border:1px solid #c33;image-rendering:pixelated}
img.plot{max-width:100%}
.note{color:#555;font-size:13px}
"""

_LOAD_CHECK = """
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = loaded;
  document.body.dataset.imagesTotal = images.length;
});
"""


def _data_uri(image: np.ndarray | Image.Image, fmt: str = "JPEG") -> str:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def _figure_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"


def detail_window(
    ir: np.ndarray, vi: np.ndarray, fraction: float = 0.25
) -> tuple[int, int, int, int]:
    """The window (top, left, height, width) covering ``fraction`` of each side where the two
    sources together have the most gradient energy: the region worth zooming into."""
    sources = torch.cat([to_tensor(a).mean(dim=1, keepdim=True) for a in (ir, vi)], dim=1)
    gx, gy = sobel(sources)
    energy = torch.sqrt(gx**2 + gy**2).sum(dim=1, keepdim=True)
    h, w = ir.shape[:2]
    wh, ww = max(1, int(h * fraction)), max(1, int(w * fraction))
    local = filter_separable(energy, torch.ones(wh), torch.ones(ww), border="valid")[0, 0]
    index = int(torch.argmax(local))
    top, left = divmod(index, local.shape[1])
    return top, left, wh, ww


def _tile(label: str, image: np.ndarray, window: tuple[int, int, int, int]) -> str:
    top, left, wh, ww = window
    thumb = Image.fromarray(image)
    thumb.thumbnail((260, 260))
    crop = Image.fromarray(image[top : top + wh, left : left + ww])
    zoom = 260 / max(crop.size)
    crop = crop.resize(
        (max(1, round(crop.width * zoom)), max(1, round(crop.height * zoom))),
        Image.Resampling.NEAREST,
    )
    return (
        f'<div class="tile"><img src="{_data_uri(thumb)}" alt="{html.escape(label)}">'
        f'<img class="crop" src="{_data_uri(crop)}" alt="{html.escape(label)} (zoom)">'
        f"{html.escape(label)}</div>"
    )


def _grids(results: BenchResults, dataset: str, count: int) -> str:
    by_image: dict[str, dict[str, Path]] = {}
    pairs = {}
    for entry in results.entries:
        if entry.dataset == dataset and entry.fused is not None:
            by_image.setdefault(entry.pair.name, {})[entry.method] = entry.fused
            pairs[entry.pair.name] = entry.pair
    parts = []
    for name in sorted(by_image)[:count]:
        ir, vi = read_image(pairs[name].ir), read_image(pairs[name].vi)
        window = detail_window(ir, vi)
        tiles = [_tile("infrared", ir, window), _tile("visible", vi, window)]
        tiles += [
            _tile(m, read_image(by_image[name][m]), window)
            for m in results.methods
            if m in by_image[name]
        ]
        parts.append(f"<h4>{html.escape(name)}</h4><div class='grid'>{''.join(tiles)}</div>")
    return "".join(parts)


def _html_cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>–</td>"
    css = {1: " class='best'", 2: " class='second'"}.get(cell.rank or 0, "")
    return f"<td{css}>{format_number(cell.mean)} ± {format_number(cell.std)}</td>"


def _metric_table_html(results: BenchResults, dataset: str, better: dict[str, bool]) -> str:
    table = metric_table(results, dataset)
    head = "".join(
        f"<th>{html.escape(m)} {'↑' if better.get(m, True) else '↓'}</th>"
        for m in results.metric_names
    )
    rows = "".join(
        f"<tr><td>{html.escape(method)}</td>"
        + "".join(_html_cell(table.get(method, {}).get(m)) for m in results.metric_names)
        + "</tr>"
        for method in results.methods
    )
    return f"<table class='metrics'><tr><th>method</th>{head}</tr>{rows}</table>"


def _timing_table_html(results: BenchResults, dataset: str) -> str:
    timing = timing_table(results, dataset)
    if not timing:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{r['median_s']:.4f}</td><td>{r['pairs']}</td>"
        f"<td>{r.get('peak_rss_mb', '–')}</td></tr>"
        for m, r in timing.items()
    )
    head = "<tr><th>method</th><th>median s/pair</th><th>pairs timed</th><th>peak RSS MB</th></tr>"
    return f"<table>{head}{rows}</table>"


def _metric_plots(results: BenchResults, dataset: str) -> str:
    names = results.metric_names
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(3.6 * columns, 2.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, metric in zip(axes.flat, names, strict=False):
        data, labels = [], []
        for method in results.methods:
            samples = [
                v[metric]
                for (d, _, m), v in results.values.items()
                if d == dataset and m == method and metric in v
            ]
            if samples:
                data.append(samples)
                labels.append(method)
        if data:
            ax.boxplot(data)
            ax.set_xticks(range(1, len(labels) + 1), labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    figure.tight_layout()
    alt = f"metric distributions for {html.escape(dataset)}"
    return f"<img class='plot' src='{_figure_uri(figure)}' alt='{alt}'>"


def _speed_quality_plot(results: BenchResults) -> str:
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    plotted = False
    for dataset in results.config.datasets:
        table = metric_table(results, dataset.name)
        timing = timing_table(results, dataset.name)
        for method, row in timing.items():
            ranks = [cell.rank for cell in table.get(method, {}).values() if cell.rank]
            if ranks:
                ax.scatter(
                    row["median_s"], statistics.fmean(ranks), label=f"{method} ({dataset.name})"
                )
                ax.annotate(method, (row["median_s"], statistics.fmean(ranks)), fontsize=8)
                plotted = True
    if not plotted:
        return ""
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("median seconds per pair (log)")
    ax.set_ylabel("mean rank over metrics (1 = best)")
    ax.legend(fontsize=7)
    figure.tight_layout()
    return f"<img class='plot' src='{_figure_uri(figure)}' alt='speed versus quality'>"


def write_report(
    results: BenchResults, path: Path, environment: dict[str, str], grid_images: int = 3
) -> None:
    """Write ``index.html`` with everything embedded."""
    config = results.config
    better = {m.name: m.higher_is_better for m in metrics(config.convention)}
    sections = []
    for dataset in config.datasets:
        notes = "".join(
            f"<li>external <code>{html.escape(m)}</code> is missing {len(n)} image(s): "
            f"{html.escape(', '.join(n[:10]))}</li>"
            for (d, m), n in sorted(results.missing.items())
            if d == dataset.name and n
        )
        notes += "".join(
            f"<li><code>{html.escape(m)}</code> failed on {len(images)} pair(s) "
            f"({html.escape(', '.join(images[:10]))}): {html.escape(why)}</li>"
            for (m, why), images in failure_groups(results, dataset.name).items()
        )
        sections.append(
            f"<h2>{html.escape(dataset.name)}</h2>"
            f"{_metric_table_html(results, dataset.name, better)}"
            f"{_timing_table_html(results, dataset.name)}"
            f"{f'<ul class=note>{notes}</ul>' if notes else ''}"
            f"<h3>Metric distributions</h3>{_metric_plots(results, dataset.name)}"
            "<h3>Images</h3><p class='note'>Each tile: the whole image, and below it the region "
            "where the sources have the most detail, enlarged.</p>"
            f"{_grids(results, dataset.name, grid_images)}"
        )
    machine = "; ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in environment.items())
    speed = _speed_quality_plot(results)
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ivif benchmark report</title>
<style>{_STYLE}</style><script>{_LOAD_CHECK}</script></head>
<body>
<h1>ivif benchmark report</h1>
<p>Metrics: convention <code>{html.escape(config.convention)}</code>; mean ± std over images;
best in bold, second underlined; ↑ higher is better, ↓ lower is better.</p>
<p class="note">{machine}</p>
{f"<h2>Speed and quality</h2>{speed}" if speed else ""}
{"".join(sections)}
</body></html>
"""
    path.write_text(document, encoding="utf-8")
