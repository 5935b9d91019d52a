"""The recurrent loop of one peephole LSTM/LSTMP layer and direction, with a hand-written BPTT.

Forward, per step t (gate order i, f, g, o; ``a_t`` the precomputed input projection
``W_ih x_t + b``; equations of :mod:`lstmforge.nn.lstm`):

    z_t = a_t + W_hh r_{t-1}
    i, f = σ(z_i + w_ci ∘ c_{t-1}), σ(z_f + w_cf ∘ c_{t-1});  g = tanh(z_g)
    c_t = f ∘ c_{t-1} + i ∘ g;   o = σ(z_o + w_co ∘ c_t);   h_t = o ∘ tanh(c_t)
    r_t = W_hr h_t (LSTMP) or h_t

Backward (backpropagation through time, Werbos 1990), walking t = T-1 .. 0 with the incoming
gradients dr (of r_t) and dc (of c_t):

    dh    = W_hr^T dr                  (or dr)
    dz_o  = dh ∘ tanh(c_t) ∘ o(1-o)
    dc   += dh ∘ o ∘ (1 - tanh²(c_t)) + w_co ∘ dz_o
    dz_i  = dc ∘ g ∘ i(1-i);  dz_f = dc ∘ c_{t-1} ∘ f(1-f);  dz_g = dc ∘ i ∘ (1-g²)
    dc_{t-1} = dc ∘ f + w_ci ∘ dz_i + w_cf ∘ dz_f;     dr_{t-1} = W_hh^T dz

and after the loop, as single large matrix products over all T·B rows (as cuDNN does):
dW_hh = Σ_t dz_t r_{t-1}^T, dW_hr = Σ_t dr_t h_t^T, dw_ci = Σ dz_i ∘ c_{t-1}, dw_cf likewise,
dw_co = Σ dz_o ∘ c_t. Autograd through the per-step ops would instead form T thin
[4H, B] x [B, H] products for dW_hh and add them up one by one, which costs more than the rest
of the backward pass on CPU.

With a mask (variable lengths), padded steps carry the state through unchanged and output
zeros; their gradients pass straight to the previous step.

While tracing or exporting (or under ``torch.compile``), the same step function runs under
plain autograd so the graph contains only standard operators.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmforge.nn._validate import is_tracing


def lstm_cell_step(
    a_t: Tensor,
    r: Tensor,
    c: Tensor,
    w_hh_t: Tensor,
    w_cif: Tensor,
    w_co: Tensor,
    w_hr: Tensor | None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]:
    """One step (module docstring). ``w_hh_t``: W_hh transposed; ``w_cif``: [w_ci; w_cf] [2, H].

    Returns ``(r_t, c_t, (if_gates [B, 2, H], g, o, tanh(c_t), h_t))``.
    """
    hidden = c.shape[1]
    z = torch.addmm(a_t, r, w_hh_t)
    z_if, z_g, z_o = z.split([2 * hidden, hidden, hidden], dim=1)
    if_gates = torch.sigmoid(torch.addcmul(z_if.view(-1, 2, hidden), w_cif, c.unsqueeze(1)))
    i, f = if_gates.unbind(1)
    g = torch.tanh(z_g)
    c_new = torch.addcmul(f * c, i, g)
    o = torch.sigmoid(torch.addcmul(z_o, w_co, c_new))
    tanh_c = torch.tanh(c_new)
    h = o * tanh_c
    r_new = h if w_hr is None else torch.mm(h, w_hr.t())
    return r_new, c_new, (if_gates, g, o, tanh_c, h)


def _run_steps(
    a: Tensor,
    r0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    w_ci: Tensor,
    w_cf: Tensor,
    w_co: Tensor,
    w_hr: Tensor | None,
    mask: Tensor | None,
    keep: bool,
) -> tuple[Tensor, Tensor, Tensor, dict[str, list[Tensor]]]:
    """The forward loop; with ``keep``, also the per-step values the backward pass needs."""
    w_hh_t, w_cif = w_hh.t(), torch.stack([w_ci, w_cf])
    r, c = r0, c0
    outputs: list[Tensor] = []
    kept: dict[str, list[Tensor]] = {"r": [r0], "c": [c0], "cell": []}
    for t, a_t in enumerate(a.unbind(0)):
        r_new, c_new, cell = lstm_cell_step(a_t, r, c, w_hh_t, w_cif, w_co, w_hr)
        if mask is None:
            r, c = r_new, c_new
            outputs.append(r_new)
        else:
            valid = mask[t]
            r, c = torch.where(valid, r_new, r), torch.where(valid, c_new, c)
            outputs.append(r_new * valid)
        if keep:
            kept["r"].append(r)
            kept["c"].append(c)
            kept["cell"].append(cell)
    return torch.stack(outputs), r, c, kept


class _PeepholeRecurrence(torch.autograd.Function):
    """Forward loop without autograd bookkeeping; BPTT backward (module docstring)."""

    @staticmethod
    def forward(ctx, a, r0, c0, w_hh, w_ci, w_cf, w_co, w_hr, mask):
        y, r, c, kept = _run_steps(
            a, r0, c0, w_hh, w_ci, w_cf, w_co, w_hr, mask, keep=any(ctx.needs_input_grad)
        )
        ctx.kept = kept
        ctx.save_for_backward(w_hh, w_ci, w_cf, w_co, w_hr, mask)
        # r and c are also the last entries of ``kept``: returning those very tensors would
        # make ctx -> kept -> output -> grad_fn (= ctx) a cycle that Python's collector cannot
        # see, and every batch's activations would leak. Return copies instead.
        return y, r.clone(), c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dr_n, dc_n):
        w_hh, w_ci, w_cf, w_co, w_hr, mask = ctx.saved_tensors
        kept = ctx.kept
        steps, batch, hidden = len(kept["cell"]), dc_n.shape[0], dc_n.shape[1]
        w_cif = torch.stack([w_ci, w_cf])
        dz_all = dy.new_empty(steps, batch, 4 * hidden)
        dr_all = dy.new_empty(steps, batch, w_hr.shape[0]) if w_hr is not None else None
        dr, dc = dr_n, dc_n
        for t in range(steps - 1, -1, -1):
            if_gates, g, o, tanh_c, _ = kept["cell"][t]
            i, f = if_gates.unbind(1)
            c_prev = kept["c"][t]
            if mask is None:
                dr_new, dc_new = dy[t] + dr, dc
            else:
                valid = mask[t].to(dy.dtype)
                dr_new, dc_new = valid * (dy[t] + dr), valid * dc
            dh = dr_new if w_hr is None else torch.mm(dr_new, w_hr)
            if dr_all is not None:
                dr_all[t] = dr_new
            dz = dz_all[t]
            dz_if, dz_g, dz_o = dz.split([2 * hidden, hidden, hidden], dim=1)
            torch.mul(dh * tanh_c, o * (1 - o), out=dz_o)
            dc_t = dc_new + dh * o * (1 - tanh_c * tanh_c) + w_co * dz_o
            torch.mul(dc_t * i, 1 - g * g, out=dz_g)
            d_if = torch.stack([dc_t * g, dc_t * c_prev], dim=1) * if_gates * (1 - if_gates)
            dz_if.copy_(d_if.view(batch, 2 * hidden))
            dc_prev = dc_t * f + (d_if * w_cif).sum(1)
            dr_prev = torch.mm(dz, w_hh)
            if mask is not None:  # a padded step passes the carried gradients through
                dc_prev = dc_prev + (1 - valid) * dc
                dr_prev = dr_prev + (1 - valid) * dr
            dr, dc = dr_prev, dc_prev
        rows = steps * batch
        r_prev = torch.stack(kept["r"][:-1]).view(rows, -1)
        c_all = torch.stack(kept["c"])  # [T + 1, B, H]
        dz_rows = dz_all.view(rows, 4 * hidden)
        d_w_hh = torch.mm(dz_rows.t(), r_prev)
        d_w_ci = (dz_all[..., :hidden] * c_all[:-1]).sum((0, 1))
        d_w_cf = (dz_all[..., hidden : 2 * hidden] * c_all[:-1]).sum((0, 1))
        d_w_co = (dz_all[..., 3 * hidden :] * c_all[1:]).sum((0, 1))
        d_w_hr = None
        if w_hr is not None:
            h_rows = torch.stack([cell[4] for cell in kept["cell"]]).view(rows, hidden)
            d_w_hr = torch.mm(dr_all.view(rows, -1).t(), h_rows)
        return dz_all, dr, dc, d_w_hh, d_w_ci, d_w_cf, d_w_co, d_w_hr, None


def peephole_recurrence(
    a: Tensor,
    r0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    peepholes: tuple[Tensor, Tensor, Tensor],
    w_hr: Tensor | None,
    mask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over the input projections ``a`` [T, B, 4H].

    Args: r0 [B, P or H], c0 [B, H], w_hh [4H, P or H], peepholes ``(w_ci, w_cf, w_co)`` [H],
    w_hr [P, H] or None, mask [T, B, 1] bool (False on padded steps) or None.
    Returns ``(y [T, B, P or H], r_T, c_T)``.
    """
    w_ci, w_cf, w_co = peepholes
    if is_tracing():
        y, r, c, _ = _run_steps(a, r0, c0, w_hh, w_ci, w_cf, w_co, w_hr, mask, keep=False)
        return y, r, c
    return _PeepholeRecurrence.apply(a, r0, c0, w_hh, w_ci, w_cf, w_co, w_hr, mask)
