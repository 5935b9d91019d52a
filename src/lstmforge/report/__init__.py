"""Figures and the HTML report: :mod:`.plots` (matplotlib, Agg), :mod:`.html` (one
self-contained page), :mod:`.runs` (the JSON outputs of the commands, recognised),
:mod:`.sections` (tables and figures per kind of output), :mod:`.page` (the page of
``lstmforge report`` and of the demo), :mod:`.demo` (the end-to-end ``lstmforge demo`` run)."""
