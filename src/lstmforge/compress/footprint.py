"""Memory footprint of a CompressedModel as the accelerator stores it.

Per weight matrix, in bits of on-chip memory (ESE §4.1 / EIE §III-B):

* values: every stored entry (nonzeros and padding) at the matrix's weight width;
* indices: every stored entry at 4 bits (``rel_index``);
* pointers: every PE walks its columns in order, so its pointer memory holds one entry count per
  column (``col_ptr`` is their running sum): ``cols`` words per PE, each
  ``SparseMatrix.pointer_bits`` wide (:func:`lstmforge.compress.csc.pointer_bits`: what the
  longest column of any PE needs, the same width in every PE);
* padding: the part of values + indices spent on padding entries (already inside the two above).

Vectors are counted at their stored width, split into biases and peepholes. ConvLSTM
per-pixel (Hadamard) peepholes [Hc, H, W] (Shi et al. 2015, eq. 3) are stored dense and not
pruned, so the report also gives them on their own and the ratio without them.

The baselines are the same parameters dense in fp32 and dense at their stored widths; the
compression ratio is dense fp32 bits over compressed bits, everything above included. The
activation-unit tables (the sigmoid/tanh LUTs) are part of the activation unit, the same for
every model and absent with PLAN units; they are reported on their own, outside the ratio.
"""

from __future__ import annotations

import math
from typing import Any

from lstmforge.compress.artifact import CompressedModel
from lstmforge.compress.csc import MAX_GAP

INDEX_BITS = int(math.log2(MAX_GAP + 1))
TOTALS = (
    "values",
    "indices",
    "pointers",
    "padding",
    "biases",
    "peepholes",
    "dense_fp32",
    "dense_weight_bits",
    "peepholes_dense_fp32",
)


def _matrix_row(
    shape: tuple[int, int], nonzeros: int, entries: int, bits: int, ptr: int, pes: int
) -> dict[str, Any]:
    """Footprint of one matrix (see the module docstring)."""
    dense = shape[0] * shape[1]
    row = {
        "shape": list(shape),
        "nonzeros": nonzeros,
        "padding_entries": entries - nonzeros,
        "pointer_bits": ptr,
        "values_bits": entries * bits,
        "indices_bits": entries * INDEX_BITS,
        "pointers_bits": pes * shape[1] * ptr,
        "padding_bits": (entries - nonzeros) * (bits + INDEX_BITS),
        "dense_fp32_bits": dense * 32,
        "dense_weight_bits": dense * bits,
    }
    row["total_bits"] = row["values_bits"] + row["indices_bits"] + row["pointers_bits"]
    row["ratio_vs_fp32"] = row["dense_fp32_bits"] / row["total_bits"]
    return row


def _ratio(dense: float, compressed: float) -> float:
    return dense / compressed if compressed else math.inf


def footprint(cm: CompressedModel) -> dict[str, Any]:
    """Bits per matrix and bytes in total (see the module docstring)."""
    matrices: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(TOTALS, 0)
    for block in cm.blocks:
        for name, m in block.matrices.items():
            bits = m.fmt.bits
            row = _matrix_row(
                m.shape, m.nonzeros, sum(m.entries_per_pe), bits, m.pointer_bits, m.num_pes
            )
            matrices[f"{block.name or '<root>'}:{name}"] = row
            for key in ("values", "indices", "pointers", "padding", "dense_fp32"):
                totals[key] += row[f"{key}_bits"]
            totals["dense_weight_bits"] += row["dense_weight_bits"]
        for name, vector in block.vectors.items():
            kind = "biases" if name.startswith("bias") else "peepholes"
            totals[kind] += vector.codes.size * vector.fmt.bits
            totals["dense_fp32"] += vector.codes.size * 32
            totals["dense_weight_bits"] += vector.codes.size * vector.fmt.bits
            if kind == "peepholes":
                totals["peepholes_dense_fp32"] += vector.codes.size * 32
    vectors = totals["biases"] + totals["peepholes"]
    compressed = totals["values"] + totals["indices"] + totals["pointers"] + vectors
    tables = sum(t.size for t in cm.activation_tables.values()) * cm.activation.output_format.bits
    return {
        "matrices": matrices,
        **{f"{k}_bytes": v / 8 for k, v in totals.items()},
        "vectors_bytes": vectors / 8,
        "compressed_bytes": compressed / 8,
        "ratio_vs_fp32": _ratio(totals["dense_fp32"], compressed),
        "ratio_vs_dense_weight_bits": _ratio(totals["dense_weight_bits"], compressed),
        "ratio_vs_fp32_without_peepholes": _ratio(
            totals["dense_fp32"] - totals["peepholes_dense_fp32"], compressed - totals["peepholes"]
        ),
        "padding_fraction": totals["padding"] / compressed if compressed else 0.0,
        "activation_tables_bytes": tables / 8,
    }
