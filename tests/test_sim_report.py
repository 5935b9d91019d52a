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
