"""``export_c``: a CompressedModel as a self-contained C99 implementation (``docs/export-c.md``).

The files are generated in full into a temporary directory next to the destination and only
then moved into place: a new directory is renamed as a whole; into an existing one each file is
moved with an atomic rename. A failed export leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lstmforge.compress.artifact import CompressedModel
from lstmforge.errors import InputError
from lstmforge.export.c_sources import render
from lstmforge.export.plan import plan_export

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_prefix(artifact: str | Path) -> str:
    """A C identifier from the artifact's file name (``speech-32pe.lfz`` -> ``speech_32pe``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", Path(artifact).stem)
    return name if IDENTIFIER.fullmatch(name) else f"model_{name}"


def write_directory(out_dir: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name -> text) into ``out_dir`` atomically (module docstring)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        if out_dir.is_dir():
            for name in files:
                os.replace(tmp / name, out_dir / name)
        else:
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)  # mkdtemp creates 0700
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_c(cm: CompressedModel, out_dir: str | Path, prefix: str, source: str) -> dict[str, Any]:
    """Write ``PREFIX.h``, ``PREFIX_model.h``, ``PREFIX.c`` and ``PREFIX_example.c`` into
    ``out_dir``; returns the summary (files, formats, bytes of constant data per memory).

    ``source`` names the artifact in the files' comments. Unsupported models (ConvLSTM blocks,
    formats wider than 16 bits, ...) raise :class:`InputError` before anything is written.
    """
    if not IDENTIFIER.fullmatch(prefix):
        raise InputError(
            f"--prefix: expected a C identifier ([A-Za-z_][A-Za-z0-9_]*), got {prefix!r}"
        )
    plan = plan_export(cm)
    sources = render(plan, prefix, source)
    out_dir = Path(out_dir)
    write_directory(out_dir, sources.files)
    fin, fout = plan.input_format, plan.output_format
    return {
        "artifact": source,
        "out": str(out_dir),
        "prefix": prefix,
        "files": sorted(sources.files),
        "num_pes": plan.num_pes,
        "activation": plan.activation_kind,
        "input": {"size": plan.blocks[0].in_size, "bits": fin.bits, "frac": fin.frac},
        "output": {"size": plan.blocks[-1].out_size, "bits": fout.bits, "frac": fout.frac},
        "col_ptr_bits": sources.col_ptr_bits,
        "memory_bytes": sources.memory_bytes | {"total": sum(sources.memory_bytes.values())},
    }
