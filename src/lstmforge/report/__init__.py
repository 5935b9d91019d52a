"""Figures and the HTML report: :mod:`.plots` (matplotlib, Agg), :mod:`.html` (one
self-contained page), :mod:`.demo` (the end-to-end ``lstmforge demo`` run and its report)."""
