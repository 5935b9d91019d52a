"""Memory footprint of a CompressedModel as the accelerator stores it.

Per weight matrix, in bits of on-chip memory (ESE §4.1 / EIE §III-B):

* values: every stored entry (nonzeros and padding) at ``weight_bits``;
* indices: every stored entry at 4 bits (``rel_index``);
* pointers: the PE walks its columns in order, so its pointer memory holds each column's entry
  count (``col_ptr[j+1] - col_ptr[j]``; ``col_ptr`` is their running sum), ``cols`` counts per
  PE, each ``ceil(log2(longest column + 1))`` bits wide (at least 1);
* padding: the part of values + indices spent on padding entries (already inside the two above).

Vectors (biases, peepholes) are counted at their stored width. The baselines are the same
parameters dense in fp32 and dense at ``weight_bits``; the compression ratio is dense fp32 bits
over compressed bits, everything included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstmforge.compress.artifact import CompressedModel
from lstmforge.compress.csc import MAX_GAP

INDEX_BITS = int(math.log2(MAX_GAP + 1))


def _pointer_bits(entries: int) -> int:
    return max(1, math.ceil(math.log2(entries + 1)))


def footprint(cm: CompressedModel) -> dict[str, Any]:
    """Bits and bytes per matrix and in total (see the module docstring)."""
    matrices: dict[str, dict[str, float]] = {}
    totals = dict.fromkeys(
        ("values", "indices", "pointers", "padding", "vectors", "dense_fp32", "dense_weight_bits"),
        0,
    )
    for block in cm.blocks:
        for name, m in block.matrices.items():
            bits = m.fmt.bits
            entries = sum(m.entries_per_pe)
            padding = entries - m.nonzeros
            pointers = sum(
                m.shape[1] * _pointer_bits(int(np.diff(pe.col_ptr).max(initial=0))) for pe in m.pes
            )
            dense = m.shape[0] * m.shape[1]
            row = {
                "shape": list(m.shape),
                "nonzeros": m.nonzeros,
                "padding_entries": padding,
                "values_bits": entries * bits,
                "indices_bits": entries * INDEX_BITS,
                "pointers_bits": pointers,
                "padding_bits": padding * (bits + INDEX_BITS),
                "dense_fp32_bits": dense * 32,
                "dense_weight_bits": dense * bits,
            }
            row["total_bits"] = row["values_bits"] + row["indices_bits"] + row["pointers_bits"]
            row["ratio_vs_fp32"] = row["dense_fp32_bits"] / row["total_bits"]
            matrices[f"{block.name or '<root>'}:{name}"] = row
            for key, field in (
                ("values", "values_bits"),
                ("indices", "indices_bits"),
                ("pointers", "pointers_bits"),
                ("padding", "padding_bits"),
                ("dense_fp32", "dense_fp32_bits"),
                ("dense_weight_bits", "dense_weight_bits"),
            ):
                totals[key] += row[field]
        for vector in block.vectors.values():
            totals["vectors"] += vector.codes.size * vector.fmt.bits
            totals["dense_fp32"] += vector.codes.size * 32
            totals["dense_weight_bits"] += vector.codes.size * vector.fmt.bits
    compressed = totals["values"] + totals["indices"] + totals["pointers"] + totals["vectors"]
    total_bytes = {f"{k}_bytes": v / 8 for k, v in totals.items()}
    return {
        "matrices": matrices,
        **total_bytes,
        "compressed_bytes": compressed / 8,
        "ratio_vs_fp32": totals["dense_fp32"] / compressed if compressed else math.inf,
        "ratio_vs_dense_weight_bits": totals["dense_weight_bits"] / compressed
        if compressed
        else math.inf,
        "padding_fraction": totals["padding"] / compressed if compressed else 0.0,
    }
