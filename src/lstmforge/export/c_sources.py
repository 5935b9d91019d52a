"""The C files of an export: the public header, the model header (the PE memories), the
implementation and an example program (``docs/export-c.md``).

``NAME_model.h`` holds every array of the ``.lfz`` as a ``static const`` C array: per matrix and
PE the CSC ``values`` (int16), ``rel_index`` (4 bits, packed two per byte, entry 2k in the low
nibble of byte k) and ``col_ptr`` (the narrowest unsigned type that holds the largest PE's entry
count), the biases and peepholes (int16 codes) and the activation tables, plus the descriptors
(:mod:`lstmforge.export.c_runtime`) that tie them to the plan's constants
(:mod:`lstmforge.export.plan`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from lstmforge.compress.csc import PECSC
from lstmforge.engine.fixed_point import QFormat
from lstmforge.export.c_runtime import TYPES, runtime_source
from lstmforge.export.plan import CODE_BITS, ExportPlan, LayerPlan, MatrixPlan

PER_LINE = 12
COL_PTR_TYPES = ((8, "uint8_t"), (16, "uint16_t"), (32, "uint32_t"))


@dataclass(frozen=True)
class Sources:
    """The generated files by name, and the bytes of constant data per memory."""

    files: dict[str, str]
    memory_bytes: dict[str, int]
    col_ptr_bits: int


def pack_rel_index(rel_index: np.ndarray) -> np.ndarray:
    """4-bit indices two per byte: entry 2k in the low nibble of byte k, 2k+1 in the high."""
    padded = np.zeros(rel_index.size + rel_index.size % 2, dtype=np.uint8)
    padded[: rel_index.size] = rel_index
    return (padded[0::2] | (padded[1::2] << 4)).astype(np.uint8)


def col_ptr_width(plan: ExportPlan) -> tuple[int, str]:
    """Bits and C type of ``col_ptr``: the narrowest that holds the largest PE's entry count."""
    largest = max(pe.entries for m in plan.matrices for pe in m.matrix.pes)
    return next((bits, name) for bits, name in COL_PTR_TYPES if largest < (1 << bits))


def _array(ctype: str, name: str, values: np.ndarray, comment: str) -> str:
    """A ``static const`` array; an empty one holds a single unused 0 (C has no empty arrays)."""
    items = [str(int(v)) for v in values] or ["0"]
    lines = [", ".join(items[i : i + PER_LINE]) for i in range(0, len(items), PER_LINE)]
    body = ",\n    ".join(lines)
    return f"/* {comment} */\nstatic const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


def _fmt(fmt: QFormat) -> str:
    return f"{fmt} ({fmt.bits} bits, value = code * 2^{-fmt.frac})"


class _ModelHeader:
    """Builds ``NAME_model.h`` piece by piece, counting bytes per memory."""

    def __init__(self, plan: ExportPlan, col_ptr_type: str, col_ptr_bytes: int) -> None:
        self.plan = plan
        self.col_ptr_type = col_ptr_type
        self.col_ptr_bytes = col_ptr_bytes
        self.parts: list[str] = []
        self.memory: Counter[str] = Counter()

    def vector(self, name: str, codes: np.ndarray, comment: str, memory: str) -> str:
        self.parts.append(_array("int16_t", name, codes.ravel(), comment))
        self.memory[memory] += 2 * codes.size
        return name

    def pe(self, base: str, p: int, pe: PECSC) -> str:
        packed = pack_rel_index(pe.rel_index)
        key = f"{base}_pe{p:03d}"
        self.parts += [
            _array("int16_t", f"{key}_values", pe.values, f"PE {p}: {pe.entries} weight codes"),
            _array("uint8_t", f"{key}_rel_index", packed, f"PE {p}: 4-bit indices, packed"),
            _array(self.col_ptr_type, f"{key}_col_ptr", pe.col_ptr, f"PE {p}: column pointers"),
        ]
        self.memory["values"] += 2 * pe.entries
        self.memory["rel_index"] += packed.size
        self.memory["col_ptr"] += self.col_ptr_bytes * pe.col_ptr.size
        return f"{{{key}_values, {key}_rel_index, {key}_col_ptr}}"

    def matrix(self, m: MatrixPlan) -> str:
        base = f"b{m.block}_{m.name}"
        rows, cols = m.matrix.shape
        self.parts.append(
            f"\n/* block {m.block} {m.name} [{rows} x {cols}], weights {_fmt(m.matrix.fmt)}, "
            f"{m.matrix.nonzeros} nonzeros over {self.plan.num_pes} PEs */\n"
        )
        pes = [self.pe(base, p, pe) for p, pe in enumerate(m.matrix.pes)]
        self.parts.append(
            f"static const lf_pe_t {base}_pes[LF_NUM_PES] = {{\n    "
            + ",\n    ".join(pes)
            + "\n};\n"
            f"static const lf_matrix_t {base} = {{{rows}, {cols}, {m.shift}, {m.bits}, "
            f"{base}_pes}};\n"
        )
        return f"&{base}"

    def layer(self, ly: LayerPlan, vectors: dict) -> None:
        w_ih, w_hh = self.matrix(ly.w_ih), self.matrix(ly.w_hh)
        w_hr = self.matrix(ly.w_hr) if ly.w_hr is not None else "NULL"
        where = f"block {ly.block} layer {ly.layer}"

        def vec(name: str | None, what: str) -> str:
            if name is None:
                return "NULL"
            v = vectors[name]
            memory = "biases" if name.startswith("bias") else "peepholes"
            return self.vector(
                f"b{ly.block}_{name}", v.codes, f"{where} {what}, {_fmt(v.fmt)}", memory
            )

        bias = vec(ly.bias, "bias_ih + bias_hh")
        peep = [vec(n, n) for n in ly.peepholes]
        self.parts.append(
            f"/* {where}: H = {ly.hidden}, cell {_fmt(ly.cell)}, output {_fmt(ly.output)} */\n"
            f"static const lf_lstm_layer_t b{ly.block}_l{ly.layer} = {{\n"
            f"    {ly.hidden}, {w_ih}, {w_hh}, {w_hr}, {bias},\n"
            f"    {{{', '.join(peep)}}}, {{{', '.join(map(str, ly.peephole_shifts))}}},\n"
            f"    {ly.ig_shift}, {ly.cell.bits}, {ly.cell_to_pre_shift}, {ly.hidden_shift}, "
            f"{ly.hidden_bits}\n}};\n"
        )

    def linear(self, block: int, m: MatrixPlan, vectors: dict) -> None:
        weight = self.matrix(m)
        bias = "NULL"
        if "bias" in vectors:
            v = vectors["bias"]
            bias = self.vector(
                f"b{block}_bias", v.codes, f"block {block} bias, {_fmt(v.fmt)}", "biases"
            )
        self.parts.append(f"static const lf_linear_t b{block}_linear = {{{weight}, {bias}}};\n")


def model_header(plan: ExportPlan, prefix: str, source: str) -> tuple[str, Counter, int]:
    """``NAME_model.h``: constants, types, tables and the PE memories of every matrix."""
    act = plan.activation
    col_bits, col_type = col_ptr_width(plan)
    h = _ModelHeader(plan, col_type, col_bits // 8)
    guard = f"{prefix.upper()}_MODEL_H"
    head = [
        f"/* {prefix}_model.h: the memories of the compressed model {source}, as stored in the\n"
        f"   .lfz (generated by lstmforge export-c). Include only from {prefix}.c.\n"
        "   Layout and mapping to the ESE PE memories: docs/export-c.md. */\n",
        f"#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n",
        f"#define LF_NUM_PES {plan.num_pes}\n",
        f"#define LF_P_BITS {plan.pre.bits} /* activation-unit input P: {plan.pre} */\n",
        f"#define LF_P_FRAC {plan.pre.frac}\n",
        f"#define LF_G_BITS {plan.gate.bits} /* gate outputs G: {plan.gate} */\n",
        f"#define LF_G_FRAC {plan.gate.frac}\n",
    ]
    kind = plan.activation_kind
    if kind in ("lut", "lut_interpolated"):
        head += [
            f"#define LF_ACT_IN_MIN ({plan.pre.min_code}) /* u = code - LF_ACT_IN_MIN */\n",
            f"#define LF_ACT_LOW_BITS {plan.pre.bits - act.index_bits} "
            f"/* {act.index_bits} index bits */\n",
        ]
    if kind == "plan":
        head.append(f"#define LF_PLAN_FINER_BITS {min(plan.gate.bits + 2, 32)}\n")
    head.append(
        f"\n/* col_ptr entries are {col_type}: the largest PE holds fewer than 2^{col_bits} "
        f"entries */\ntypedef {col_type} lf_colptr_t;\n{TYPES}\n"
    )
    if kind in ("lut", "lut_interpolated"):
        for name in ("sigmoid", "tanh"):
            table = plan.tables[name]
            h.vector(f"lf_{name}_table", table, f"{name} LUT, {table.size} entries in G", "tables")
    for bp in plan.blocks:
        vectors = bp.block.vectors
        h.parts.append(f"\n/* ==== block {bp.index}: {bp.block.name!r} ({bp.block.kind}) ==== */\n")
        for ly in bp.layers:
            h.layer(ly, vectors)
        if bp.linear is not None:
            h.linear(bp.index, bp.linear, vectors)
    text = "".join(head) + "".join(h.parts) + f"\n#endif /* {guard} */\n"
    return text, h.memory, col_bits


def _work_fields(plan: ExportPlan) -> list[tuple[str, str, int, str]]:
    """(type, name, length, comment) of the scratch buffers of one step."""
    rows = max(m.matrix.shape[0] for m in plan.matrices)
    gates = max([4 * ly.hidden for ly in plan.layers], default=1)
    hidden = max([ly.hidden for ly in plan.layers if ly.w_hr is not None], default=1)
    fields = [
        ("int32_t", "partial", gates, "pre-activations of one layer"),
        ("int32_t", "acc", rows, "accumulators of one SpMV"),
        ("int16_t", "m", hidden, "m_t of an LSTMP layer, before the projection"),
    ]
    last = plan.blocks[-1].index
    for bp in plan.blocks:
        if bp.input_shift is not None:
            fields.append(("int16_t", f"b{bp.index}_in", bp.in_size, f"block {bp.index} input"))
        if bp.linear is not None and bp.index != last:
            fields.append(("int16_t", f"b{bp.index}_out", bp.out_size, f"block {bp.index} output"))
    return fields


def _format_macros(plan: ExportPlan, up: str) -> str:
    """``#define``s of every signal format: the activation units' and each block's."""
    named = {"PRE": plan.pre, "GATE": plan.gate}
    for bp in plan.blocks:
        for key, fmt in bp.block.formats.items():
            named[f"B{bp.index}_{key.replace('.', '_').upper()}"] = fmt
    lines = [
        f"#define {up}_{name}_BITS {fmt.bits}\n#define {up}_{name}_FRAC {fmt.frac} /* {fmt} */\n"
        for name, fmt in named.items()
    ]
    head = (
        "/* signal formats (value = code * 2^-FRAC): activation-unit input and gates, then per\n"
        "   block its input, each layer's cell state and output, or a linear layer's output */\n"
    )
    return head + "".join(lines)


def public_header(plan: ExportPlan, prefix: str, source: str) -> str:
    """``NAME.h``: sizes, formats, the state type and the two functions."""
    up, fin, fout = prefix.upper(), plan.input_format, plan.output_format
    state = []
    for ly in plan.layers:
        state += [
            f"    int16_t b{ly.block}_r_l{ly.layer}[{ly.out_size}]; "
            f"/* block {ly.block} layer {ly.layer} output r_t, {ly.output} */\n",
            f"    int16_t b{ly.block}_c_l{ly.layer}[{ly.hidden}]; "
            f"/* block {ly.block} layer {ly.layer} cell state c_t, {ly.cell} */\n",
        ]
    work = "".join(f"    {t} {n}[{size}]; /* {c} */\n" for t, n, size, c in _work_fields(plan))
    return (
        f"/* {prefix}.h: integer-only inference of the compressed model {source}\n"
        "   (generated by lstmforge export-c; API, memory layout and build: docs/export-c.md). */\n"
        f"#ifndef {up}_H\n#define {up}_H\n\n#include <stdint.h>\n\n"
        '#ifdef __cplusplus\nextern "C" {\n#endif\n\n'
        f"#define {up}_INPUT_SIZE {plan.blocks[0].in_size}\n"
        f"#define {up}_OUTPUT_SIZE {plan.blocks[-1].out_size}\n"
        f"/* x_codes in {fin}: value = code * 2^-{up}_INPUT_FRAC */\n"
        f"#define {up}_INPUT_BITS {fin.bits}\n#define {up}_INPUT_FRAC {fin.frac}\n"
        f"/* y_codes in {fout}: value = code * 2^-{up}_OUTPUT_FRAC */\n"
        f"#define {up}_OUTPUT_BITS {fout.bits}\n#define {up}_OUTPUT_FRAC {fout.frac}\n"
        f"#define {up}_NUM_PES {plan.num_pes}\n\n"
        f"{_format_macros(plan, up)}\n"
        f"/* Scratch of {prefix}_step; nothing in it carries from one frame to the next. */\n"
        f"typedef struct {{\n{work}}} {prefix}_work_t;\n\n"
        "/* The recurrent state (codes) carried from frame to frame, and the scratch. */\n"
        f"typedef struct {{\n{''.join(state)}    {prefix}_work_t work;\n}} {prefix}_state_t;\n\n"
        "/* All-zero state (the engine's state=None). */\n"
        f"void {prefix}_init_state({prefix}_state_t *state);\n\n"
        f"/* One frame: x_codes [{up}_INPUT_SIZE] in, y_codes [{up}_OUTPUT_SIZE] out; the state\n"
        "   carries to the next call. Integer only; no allocation. */\n"
        f"void {prefix}_step({prefix}_state_t *state, const int16_t *x_codes, int16_t *y_codes);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n\n"
        f"#endif /* {up}_H */\n"
    )


def _step_body(plan: ExportPlan) -> tuple[list[str], bool]:
    """The statements of ``NAME_step`` and whether they requantize vectors."""
    lines, src, requantizes = [], "x_codes", False
    last = plan.blocks[-1].index
    for bp in plan.blocks:
        lines.append(f"    /* block {bp.index}: {bp.block.name!r} ({bp.block.kind}) */\n")
        if bp.input_shift is not None:
            fmt = bp.block.formats["input"]
            lines.append(
                f"    lf_requantize_vector({src}, w->b{bp.index}_in, {bp.in_size}, "
                f"{bp.input_shift}, {fmt.bits});\n"
            )
            src, requantizes = f"w->b{bp.index}_in", True
        if bp.linear is not None:
            dst = "y_codes" if bp.index == last else f"w->b{bp.index}_out"
            lines.append(f"    lf_linear(&b{bp.index}_linear, {src}, {dst}, w->acc);\n")
            src = dst
        for ly in bp.layers:
            r, c = f"state->b{ly.block}_r_l{ly.layer}", f"state->b{ly.block}_c_l{ly.layer}"
            lines.append(
                f"    lf_lstm_layer(&b{ly.block}_l{ly.layer}, {src}, {r}, {c}, w->partial, "
                "w->acc, w->m);\n"
            )
            src = r
    if src != "y_codes":
        lines.append(
            f"    lf_requantize_vector({src}, y_codes, {plan.blocks[-1].out_size}, 0, "
            f"{CODE_BITS}); /* copy */\n"
        )
        requantizes = True
    return lines, requantizes


def implementation(plan: ExportPlan, prefix: str, source: str) -> str:
    """``NAME.c``: the runtime pieces the model needs, ``NAME_init_state`` and ``NAME_step``."""
    body, requantizes = _step_body(plan)
    runtime = runtime_source(
        plan.activation_kind,
        linear=any(bp.linear is not None for bp in plan.blocks),
        requantize_vector=requantizes,
    )
    return (
        f"/* {prefix}.c: integer-only inference of the compressed model {source}\n"
        "   (generated by lstmforge export-c). Bit for bit the integers of lstmforge.engine:\n"
        "   docs/fixed-point.md. */\n"
        f'#include <string.h>\n\n#include "{prefix}.h"\n#include "{prefix}_model.h"\n'
        f"{runtime}\n"
        f"void {prefix}_init_state({prefix}_state_t *state)\n{{\n"
        "    memset(state, 0, sizeof *state);\n}\n\n"
        f"void {prefix}_step({prefix}_state_t *state, const int16_t *x_codes, int16_t *y_codes)\n"
        f"{{\n    {prefix}_work_t *w = &state->work;\n{''.join(body)}}}\n"
    )


def example(prefix: str) -> str:
    """``NAME_example.c``: codes from stdin, one line of output codes per frame on stdout."""
    up = prefix.upper()
    return f"""/* {prefix}_example.c: runs {prefix} on integer codes (generated by lstmforge export-c).
   Reads frames of {up}_INPUT_SIZE whitespace-separated input codes from stdin and prints one
   line of {up}_OUTPUT_SIZE output codes per frame; the state carries from frame to frame.
   Build: cc -std=c99 -O2 {prefix}.c {prefix}_example.c -o {prefix}_example */
#include <stdio.h>

#include "{prefix}.h"

int main(void)
{{
    static {prefix}_state_t state;
    const long lo = -(1L << ({up}_INPUT_BITS - 1)), hi = (1L << ({up}_INPUT_BITS - 1)) - 1;
    int16_t x[{up}_INPUT_SIZE], y[{up}_OUTPUT_SIZE];
    long code;
    int i;
    {prefix}_init_state(&state);
    for (;;) {{
        for (i = 0; i < {up}_INPUT_SIZE; i++) {{
            if (scanf("%ld", &code) != 1) {{
                if (i == 0)
                    return 0;
                fprintf(stderr, "incomplete frame: %d of %d codes\\n", i, {up}_INPUT_SIZE);
                return 1;
            }}
            if (code < lo || code > hi) {{
                fprintf(stderr, "input code %ld outside %ld..%ld\\n", code, lo, hi);
                return 1;
            }}
            x[i] = (int16_t)code;
        }}
        {prefix}_step(&state, x, y);
        for (i = 0; i < {up}_OUTPUT_SIZE; i++)
            printf(i + 1 < {up}_OUTPUT_SIZE ? "%d " : "%d\\n", y[i]);
    }}
}}
"""


def render(plan: ExportPlan, prefix: str, source: str) -> Sources:
    """Every file of the export (see the module docstring)."""
    model, memory, col_bits = model_header(plan, prefix, source)
    files = {
        f"{prefix}.h": public_header(plan, prefix, source),
        f"{prefix}_model.h": model,
        f"{prefix}.c": implementation(plan, prefix, source),
        f"{prefix}_example.c": example(prefix),
    }
    return Sources(files, dict(memory), col_bits)
