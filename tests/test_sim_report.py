"""HTML report pieces: escaping, number formatting, embedded figures, atomic write."""

import base64

from lstmforge.report import html, plots


def test_table_escapes_and_formats_numbers():
    text = html.table(["name", "value"], [("<b>", 0.123456), ("a&b", 7)])
    assert "&lt;b&gt;" in text and "a&amp;b" in text
    assert "<td>0.1235</td>" in text and "<td>7</td>" in text


def test_page_embeds_figures_and_is_written_whole(tmp_path):
    png = plots.curve_plot(
        {"loss": ([0, 1, 2], [3.0, 2.0, 1.5])}, "epoch", "loss", tmp_path / "c.png"
    )
    page = html.write_page(tmp_path / "r.html", "T", [("Curve", html.figure(png, "a curve"))])
    text = page.read_text()
    encoded = text.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(encoded) == png.read_bytes()
    assert "<h2>Curve</h2>" in text and "<figcaption>a curve</figcaption>" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "r.html"]  # no temp files left


def test_whole_floats_print_as_counts_and_none_as_n_a():
    text = html.table(["a", "b", "c"], [(50123.0, 0.123456, None)])
    assert "<td>50123</td>" in text and "<td>0.1235</td>" in text and "<td>n/a</td>" in text


def test_timeline_with_more_kinds_than_colours(tmp_path):
    kinds = [f"projection L{k}" for k in range(12)]
    timeline = [
        {"kind": kind, "pe": 0, "start": 10 * i, "end": 10 * i + 5} for i, kind in enumerate(kinds)
    ]
    assert plots.timeline_plot(timeline, 0, tmp_path / "t.png").stat().st_size > 0


def test_pareto_plot_draws_every_density(tmp_path, monkeypatch):
    points = [
        {
            "density": d,
            "pes_per_channel": p,
            "memory_bandwidth_gbs": 10.0,
            "latency_us_per_frame": 100 * d / p,
        }
        for d in (0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1)
        for p in (8, 16)
    ]
    drawn = []
    original = plots.plt.Axes.scatter

    def scatter(ax, *args, **kwargs):
        drawn.append(kwargs.get("color"))
        return original(ax, *args, **kwargs)

    monkeypatch.setattr(plots.plt.Axes, "scatter", scatter)
    plots.pareto_plot(points, points[:2], tmp_path / "p.png")
    assert len(drawn) == 7  # one scatter per density, each its own shade
