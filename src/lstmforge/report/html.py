"""One self-contained HTML page: headings, tables and embedded PNG figures (base64)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstmforge.io import atomic_path


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table. Floats are printed with 4 significant digits, whole ones (counts) in
    full; a missing value (JSON's null, e.g. the correlation of constant outputs written as
    NaN) as "n/a"."""

    def cell(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"  # counts whole
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(path: Path, caption: str) -> str:
    """A PNG embedded in the page, with a caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def write_page(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write the page atomically; ``sections`` are (heading, HTML body) pairs."""
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;}"
        "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #bbb;padding:3px 8px;}"
        "img{max-width:100%;}figcaption{color:#555;font-size:90%;}"
    )
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)
