"""The fixed C99 runtime of the export: the datapath's arithmetic, written once in C.

Each function is the C twin of one rule of ``docs/fixed-point.md`` (Python:
:mod:`lstmforge.engine.fixed_point`, :mod:`lstmforge.engine.activation_units`,
:mod:`lstmforge.engine.integer_datapath`, :func:`lstmforge.engine.spmv.spmv_reference`). The
functions are ``static`` and read the model's constants (``LF_*`` macros) and the descriptor
types (:data:`TYPES`) from the generated model header. :func:`runtime_source` returns only the
pieces a model uses, so that ``-Wall -Werror`` sees no unused function.

Intermediates are ``int64_t``: a product of two 16-bit codes, a 32-bit accumulator, or one of
those shifted left by at most 31 bits always fits. Right shifts of negative numbers are
implementation-defined in C99, so the floor in ``lf_shift_round`` is computed on non-negative
numbers only.
"""

from __future__ import annotations

FIXED_POINT = r"""
/* ---- fixed-point rules (docs/fixed-point.md, "Rounding and saturation") ---- */

/* Clamp x to the signed `bits`-bit range; nothing wraps around. */
static int64_t lf_sat(int64_t x, int32_t bits)
{
    const int64_t hi = ((int64_t)1 << (bits - 1)) - 1;
    const int64_t lo = -hi - 1;
    return x > hi ? hi : (x < lo ? lo : x);
}

/* x * 2^-shift: round half up for shift > 0 (floor(x + 2^(shift-1)) / 2^shift), exact for
   shift <= 0. */
static int64_t lf_shift_round(int64_t x, int32_t shift)
{
    if (shift > 0) {
        const int64_t t = x + ((int64_t)1 << (shift - 1));
        return t >= 0 ? t >> shift : -((-t - 1) >> shift) - 1;
    }
    return x * ((int64_t)1 << -shift);
}

/* Move x by `shift` fractional bits (round half up), then saturate to `bits`. */
static int64_t lf_requantize(int64_t x, int32_t shift, int32_t bits)
{
    return lf_sat(lf_shift_round(x, shift), bits);
}
"""

SPMV = r"""
/* ---- the PEs (docs/fixed-point.md, "Sparse matrix x vector") ---- */

/* The 4-bit relative row index of entry e: two per byte, entry 2k in the low nibble of byte k. */
static int32_t lf_rel_index(const uint8_t *packed, int32_t e)
{
    return (packed[e >> 1] >> ((e & 1) * 4)) & 15;
}

/* out = requantize(W x). x[j] is broadcast column by column; PE p walks its CSC column j
   (pos += rel_index + 1, global row pos * LF_NUM_PES + p) and adds w * x[j] into the row's
   32-bit accumulator, saturating after every addition; padding entries add 0. Then every
   accumulator is requantized into the destination format. */
static void lf_matvec(const lf_matrix_t *m, const int16_t *x, int32_t *out)
{
    int32_t r, j, p, e;
    for (r = 0; r < m->rows; r++)
        out[r] = 0;
    for (j = 0; j < m->cols; j++) {
        const int32_t xj = x[j];
        for (p = 0; p < LF_NUM_PES; p++) {
            const lf_pe_t *pe = &m->pes[p];
            int32_t pos = -1;
            for (e = (int32_t)pe->col_ptr[j]; e < (int32_t)pe->col_ptr[j + 1]; e++) {
                int32_t row;
                pos += lf_rel_index(pe->rel_index, e) + 1;
                row = pos * LF_NUM_PES + p;
                out[row] = (int32_t)lf_sat((int64_t)out[row] + (int32_t)pe->values[e] * xj, 32);
            }
        }
    }
    for (r = 0; r < m->rows; r++)
        out[r] = (int32_t)lf_requantize(out[r], m->shift, m->bits);
}
"""

REQUANTIZE_VECTOR = r"""
/* Codes of one format into another, as the engine's dequantize-then-quantize between blocks
   (round half up, saturate); shift 0 at full width is a copy. */
static void lf_requantize_vector(const int16_t *x, int16_t *y, int32_t n, int32_t shift,
                                 int32_t bits)
{
    int32_t j;
    for (j = 0; j < n; j++)
        y[j] = (int16_t)lf_requantize(x[j], shift, bits);
}
"""

LUT = r"""
/* ---- activation units (docs/fixed-point.md, "Activation units"): LUT ---- */

/* T[u >> (P.bits - index_bits)] with u = code - P.min_code: the function at the bin centre. */
static int32_t lf_unit(const int16_t *table, int32_t code)
{
    return table[(code - LF_ACT_IN_MIN) >> LF_ACT_LOW_BITS];
}
"""

LUT_INTERPOLATED = r"""
/* ---- activation units (docs/fixed-point.md, "Activation units"): interpolated LUT ---- */

/* sat_G(T[k] + shift_round((T[k+1] - T[k]) * r, low)) with u = code - P.min_code,
   k = u >> low, r = the low `low` bits of u. */
static int32_t lf_unit(const int16_t *table, int32_t code)
{
    const int32_t u = code - LF_ACT_IN_MIN;
    const int32_t k = u >> LF_ACT_LOW_BITS;
    const int64_t r = u & (((int32_t)1 << LF_ACT_LOW_BITS) - 1);
    const int64_t slope = (int64_t)table[k + 1] - table[k];
    return (int32_t)lf_sat(table[k] + lf_shift_round(slope * r, LF_ACT_LOW_BITS), LF_G_BITS);
}
"""

LUT_FUNCTIONS = r"""
static int32_t lf_sigmoid(int32_t code)
{
    return lf_unit(lf_sigmoid_table, code);
}

static int32_t lf_tanh(int32_t code)
{
    return lf_unit(lf_tanh_table, code);
}
"""

PLAN = r"""
/* ---- activation units (docs/fixed-point.md, "Activation units"): PLAN ---- */

/* PLAN sigmoid (Amin et al. 1997) of a code with in_frac fractional bits, into (out_frac,
   out_bits): shifts and adds on |x|, 1 - y for x < 0. Every shifted term is below 2^52. */
static int32_t lf_plan_sigmoid(int32_t code, int32_t in_frac, int32_t out_frac, int32_t out_bits)
{
    const int64_t a = code < 0 ? -(int64_t)code : code;
    const int64_t one = (int64_t)1 << out_frac;
    int64_t y;
    if (a >= ((int64_t)5 << in_frac))
        y = one;
    else if (a * 8 >= ((int64_t)19 << in_frac))
        y = lf_shift_round(a, in_frac + 5 - out_frac) + ((27 * one) >> 5);
    else if (a >= ((int64_t)1 << in_frac))
        y = lf_shift_round(a, in_frac + 3 - out_frac) + ((5 * one) >> 3);
    else
        y = lf_shift_round(a, in_frac + 2 - out_frac) + (one >> 1);
    if (code < 0)
        y = one - y;
    return (int32_t)lf_sat(y, out_bits);
}

static int32_t lf_sigmoid(int32_t code)
{
    return lf_plan_sigmoid(code, LF_P_FRAC, LF_G_FRAC, LF_G_BITS);
}

/* tanh(x) = 2 sigmoid(2x) - 1: sigmoid one fractional bit finer, 2x read as the same code with
   one fractional bit less; 2s - 1 at G.frac is s - 2^G.frac. */
static int32_t lf_tanh(int32_t code)
{
    const int64_t s = lf_plan_sigmoid(code, LF_P_FRAC - 1, LF_G_FRAC + 1, LF_PLAN_FINER_BITS);
    return (int32_t)lf_sat(s - ((int64_t)1 << LF_G_FRAC), LF_G_BITS);
}
"""

LSTM = r"""
/* ---- the LSTM layer (docs/fixed-point.md, "The LSTM cell"; ESE Fig. 5) ---- */

/* The element-wise unit: pre-activations `partial` [4H] (P codes, unsaturated sums, gate order
   i, f, g, o) and c [H] (updated in place) give m [H]. Each pre-activation saturates once,
   after its peephole term; the output gate sees the new cell state. */
static void lf_lstm_cell(const lf_lstm_layer_t *ly, const int32_t *partial, int16_t *c,
                         int16_t *m)
{
    const int32_t n = ly->hidden;
    int32_t j;
    for (j = 0; j < n; j++) {
        const int64_t c_prev = c[j];
        int64_t s_i = partial[j], s_f = partial[n + j], s_o = partial[3 * n + j];
        int64_t i, f, g, o, c_new, tanh_c;
        if (ly->peephole[0] != NULL)
            s_i += lf_requantize(ly->peephole[0][j] * c_prev, ly->peephole_shift[0], LF_P_BITS);
        if (ly->peephole[1] != NULL)
            s_f += lf_requantize(ly->peephole[1][j] * c_prev, ly->peephole_shift[1], LF_P_BITS);
        i = lf_sigmoid((int32_t)lf_sat(s_i, LF_P_BITS));
        f = lf_sigmoid((int32_t)lf_sat(s_f, LF_P_BITS));
        g = lf_tanh((int32_t)lf_sat(partial[2 * n + j], LF_P_BITS));
        c_new = lf_sat(lf_shift_round(f * c_prev, LF_G_FRAC) + lf_shift_round(i * g, ly->ig_shift),
                       ly->cell_bits);
        if (ly->peephole[2] != NULL)
            s_o += lf_requantize(ly->peephole[2][j] * c_new, ly->peephole_shift[2], LF_P_BITS);
        o = lf_sigmoid((int32_t)lf_sat(s_o, LF_P_BITS));
        tanh_c = lf_tanh((int32_t)lf_requantize(c_new, ly->cell_to_pre_shift, LF_P_BITS));
        m[j] = (int16_t)lf_requantize(o * tanh_c, ly->hidden_shift, ly->hidden_bits);
        c[j] = (int16_t)c_new;
    }
}

/* One layer, one frame: partial = rq_P(W_ih x) + rq_P(W_hh r) + b; the cell; then
   r = rq_out(W_hr m) (LSTMP) or r = m. Scratch: partial and acc [4H], m [H]. */
static void lf_lstm_layer(const lf_lstm_layer_t *ly, const int16_t *x, int16_t *r, int16_t *c,
                          int32_t *partial, int32_t *acc, int16_t *m)
{
    int32_t j;
    lf_matvec(ly->w_ih, x, partial);
    lf_matvec(ly->w_hh, r, acc);
    for (j = 0; j < 4 * ly->hidden; j++)
        partial[j] += acc[j] + (ly->bias != NULL ? ly->bias[j] : 0);
    if (ly->w_hr == NULL) {
        lf_lstm_cell(ly, partial, c, r);
        return;
    }
    lf_lstm_cell(ly, partial, c, m);
    lf_matvec(ly->w_hr, m, acc);
    for (j = 0; j < ly->w_hr->rows; j++)
        r[j] = (int16_t)acc[j];
}
"""

LINEAR = r"""
/* ---- the linear layer (docs/fixed-point.md): y = sat_out(rq_out(W x) + b) ---- */

static void lf_linear(const lf_linear_t *ly, const int16_t *x, int16_t *y, int32_t *acc)
{
    int32_t j;
    lf_matvec(ly->weight, x, acc);
    for (j = 0; j < ly->weight->rows; j++)
        y[j] = (int16_t)lf_sat((int64_t)acc[j] + (ly->bias != NULL ? ly->bias[j] : 0),
                               ly->weight->bits);
}
"""


def runtime_source(activation: str | None, linear: bool, requantize_vector: bool) -> str:
    """The runtime pieces a model needs.

    ``activation``: ``"lut"``, ``"lut_interpolated"`` or ``"plan"`` when the model has LSTM
    layers (None otherwise); ``linear``: it has linear blocks; ``requantize_vector``: codes
    move between formats (block boundaries, the output copy).
    """
    parts = [FIXED_POINT, SPMV]
    if requantize_vector:
        parts.append(REQUANTIZE_VECTOR)
    if activation is not None:
        units = {
            "lut": LUT + LUT_FUNCTIONS,
            "lut_interpolated": LUT_INTERPOLATED + LUT_FUNCTIONS,
            "plan": PLAN,
        }
        parts += [units[activation], LSTM]
    if linear:
        parts.append(LINEAR)
    return "".join(parts)


TYPES = r"""
/* One PE's share of a matrix, in the per-PE CSC of the .lfz (docs/lfz-format.md). */
typedef struct {
    const int16_t *values;       /* weight codes in CSC order; 0 marks a padding entry */
    const uint8_t *rel_index;    /* 4-bit zero-run lengths, two per byte, low nibble first */
    const lf_colptr_t *col_ptr;  /* cols + 1: column j is entries col_ptr[j] .. col_ptr[j+1]-1 */
} lf_pe_t;

/* A sparse matrix over LF_NUM_PES PEs (PE p owns the rows r with r % LF_NUM_PES == p) and the
   requantization of its accumulators into the destination format. */
typedef struct {
    int32_t rows, cols;
    int32_t shift;               /* W.frac + x.frac - destination frac */
    int32_t bits;                /* destination width */
    const lf_pe_t *pes;          /* [LF_NUM_PES] */
} lf_matrix_t;

/* One LSTM/LSTMP layer (P: activation-unit input, G: gate, C: cell, M: hidden format). */
typedef struct {
    int32_t hidden;              /* H */
    const lf_matrix_t *w_ih;     /* 4H x input, into P */
    const lf_matrix_t *w_hh;     /* 4H x (P or H), into P */
    const lf_matrix_t *w_hr;     /* P x H into the layer output format; NULL: no projection */
    const int16_t *bias;         /* [4H] codes in P (bias_ih + bias_hh), or NULL */
    const int16_t *peephole[3];  /* w_ci, w_cf, w_co [H], or NULL */
    int32_t peephole_shift[3];   /* peephole frac + C.frac - P.frac */
    int32_t ig_shift;            /* 2 G.frac - C.frac */
    int32_t cell_bits;           /* C.bits */
    int32_t cell_to_pre_shift;   /* C.frac - P.frac */
    int32_t hidden_shift;        /* 2 G.frac - M.frac */
    int32_t hidden_bits;         /* M.bits */
} lf_lstm_layer_t;

/* A linear layer: y = sat(rq(W x) + b) in the output format. */
typedef struct {
    const lf_matrix_t *weight;   /* out x in, into the output format */
    const int16_t *bias;         /* [out] codes in the output format, or NULL */
} lf_linear_t;
"""
