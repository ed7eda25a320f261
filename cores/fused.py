"""Fused recurrences with hand-written backward passes for the LSTM and GRU gating families.

Why: on CPU the cost of a recurrent core is dominated by per-operation overhead, not arithmetic.
Autograd records ~15 nodes per step for a UR-LSTM; these functions record one node per unroll. The
input projections of all T steps arrive precomputed (one matmul outside), the forward loop holds only
the recurrent matmul and the gate arithmetic, and the backward loop carries only ``dh``/``dc``: every
factor that does not depend on them is computed for all T at once before the loop, and the weight
gradient is one matmul after it.

Episode resets: at steps listed in ``reset_steps`` the rows set in ``reset_mask [T, B, 1]`` start from
the zero state (the initial state of these cores), and no gradient crosses the boundary.

Equivalence with the step-by-step cores (forward and gradients) is checked by ``tests/test_cores.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _Layout:
    """Row blocks ``[k H, (k + 1) H)`` of a pre-activation, one per name in order: sigmoid gates, then
    the candidate (tanh) last."""

    def __init__(self, names: list[str], hidden_size: int):
        self.names = tuple(names)
        self.hidden_size = H = hidden_size
        self.num_sigmoid = len(names) - 1
        self.slices = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(names)}
        self.size = len(names) * H


class LSTMLayout(_Layout):
    """LSTM family: ``i`` (only with an untied input gate), ``f``, ``r`` (only with the refine gate),
    ``o``, then the candidate ``u``."""

    def __init__(self, hidden_size: int, tied_input: bool, refine: bool):
        super().__init__(([] if tied_input else ["i"]) + ["f"] + (["r"] if refine else []) + ["o", "u"],
                         hidden_size)
        self.tied_input, self.refine = tied_input, refine


class GRULayout(_Layout):
    """GRU family: ``r`` (reset), ``z`` (retain), ``q`` (refine of z, optional), then the candidate
    ``n``; the same order for the input and the recurrent projection."""

    def __init__(self, hidden_size: int, refine: bool):
        super().__init__(["r", "z"] + (["q"] if refine else []) + ["n"], hidden_size)
        self.refine = refine


def _shifted_states(first: Tensor, seq: Tensor, reset_mask: Tensor | None) -> Tensor:
    """``[first, seq[0], ..., seq[T-2]]`` with reset rows zeroed: the state each step started from."""
    prev = torch.cat([first.unsqueeze(0), seq[:-1]])
    return prev.masked_fill(reset_mask, 0.0) if reset_mask is not None else prev


def _refine(f: Tensor, r: Tensor, out: Tensor | None = None) -> Tensor:
    """``f^2 + 2 r f (1 - f)`` in three kernels (same as ``gates.refine``)."""
    return torch.mul(f, torch.add(f, torch.addcmul(r, r, f, value=-1.0), alpha=2.0), out=out)


def _tanh_via_sigmoid(x: Tensor, out: Tensor | None = None) -> Tensor:
    """``tanh(x) = 2 sigmoid(2x) - 1``: same value (to rounding), 2-3x faster than ``torch.tanh``
    on the CPU builds measured here, where tanh dominates the elementwise cost of a step."""
    return torch.sigmoid(x * 2.0, out=out).mul_(2.0).sub_(1.0)


def lstm_pointwise(
    gates, c, L, s_out=None, u_out=None, g_out=None, c_out=None, y_out=None, h_out=None
):
    """The elementwise part of one LSTM-family step (sigmoid forget gate, no master gate).

    ``gates [B, G]`` full pre-activation, ``c [B, H]`` -> ``(h [B, H], c [B, H])``. The optional
    ``*_out`` buffers receive the sigmoid gates ``[B, num_sigmoid * H]``, candidate, effective gate,
    cell, ``tanh(cell)`` and output, which the fused backward reuses.
    """
    nsig = L.num_sigmoid * L.hidden_size
    s = torch.sigmoid(gates[:, :nsig], out=s_out)
    u = _tanh_via_sigmoid(gates[:, nsig:], out=u_out)
    f = s[:, L.slices["f"]]
    g = _refine(f, s[:, L.slices["r"]], out=g_out) if L.refine else f
    if L.tied_input:
        c = torch.addcmul(u, g, c - u, out=c_out)
    else:
        c = torch.addcmul(g * c, s[:, L.slices["i"]], u, out=c_out)
    h = torch.mul(s[:, L.slices["o"]], _tanh_via_sigmoid(c, out=y_out), out=h_out)
    return h, c


def gru_pointwise(xp, hp, h, L, s_out=None, n_out=None, g_out=None, h_out=None):
    """The elementwise part of one GRU-family step (sigmoid retain gate).

    ``xp [B, G]`` input projection, ``hp [B, G]`` recurrent projection (with ``b_hh``), ``h [B, H]``
    -> new ``h [B, H]``; the ``*_out`` buffers keep sigmoid gates, candidate and effective gate.
    """
    nsig = L.num_sigmoid * L.hidden_size
    s = torch.add(xp[:, :nsig], hp[:, :nsig], out=s_out).sigmoid_()
    n = _tanh_via_sigmoid(torch.addcmul(xp[:, nsig:], s[:, L.slices["r"]], hp[:, nsig:]), out=n_out)
    z = s[:, L.slices["z"]]
    g = _refine(z, s[:, L.slices["q"]], out=g_out) if L.refine else z
    return torch.addcmul(n, g, h - n, out=h_out)


class LSTMRecurrence(torch.autograd.Function):
    """``(xproj [T,B,G], w_hh [G,H], h0 [B,H], c0 [B,H]) -> (h [T,B,H], c_T [B,H])``."""

    @staticmethod
    def forward(ctx, xproj, w_hh, h0, c0, reset_mask, reset_steps, layout):
        T, B, _ = xproj.shape
        H, L = layout.hidden_size, layout
        nsig = L.num_sigmoid * H
        S = xproj.new_empty(T, B, nsig)
        U = xproj.new_empty(T, B, H)
        C = xproj.new_empty(T, B, H)
        Y = xproj.new_empty(T, B, H)
        Hs = xproj.new_empty(T, B, H)
        G = xproj.new_empty(T, B, H) if L.refine else None
        w_t = w_hh.t()
        h, c = h0, c0
        for t in range(T):
            if t in reset_steps:
                h = h.masked_fill(reset_mask[t], 0.0)
                c = c.masked_fill(reset_mask[t], 0.0)
            h, c = lstm_pointwise(
                torch.addmm(xproj[t], h, w_t), c, L,
                S[t], U[t], None if G is None else G[t], C[t], Y[t], Hs[t],
            )
        ctx.layout = L
        ctx.reset_steps = reset_steps
        ctx.save_for_backward(w_hh, h0, c0, reset_mask, S, U, C, Y, Hs, G)
        return Hs, C[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h, grad_c_last):
        """The derivation, per step ``t`` (elementwise products; ``a`` the pre-activation
        ``xproj_t + h_{t-1} W^T``, ``s(x)`` the sigmoid with ``s' = s (1 - s)``):

        forward: ``g = f`` or, refined, ``g = f^2 + 2 r f (1 - f)``; ``c_t = u + g (c_{t-1} - u)``
        (tied input) or ``g c_{t-1} + i u``; ``y = tanh(c_t)``, ``h_t = o y``.

        With ``dh`` (from the loss at ``t`` plus from step ``t + 1``) and ``dc`` (from step ``t + 1``):

        - ``dc_tot = dc + dh o (1 - y^2)``                         (``K_c = o - o y^2``)
        - ``da_o = dh y s'(o)``                                    (``K_o``)
        - ``dg = dc_tot (c_{t-1} - u)`` tied, ``dc_tot c_{t-1}`` untied (``dg_factor``)
        - ``da_f = dg s'(f)``, or refined ``dg 2 (f + r - 2 r f) s'(f)`` and ``da_r = dg 2 f (1 - f) s'(r)``
        - tied: ``da_u = dc_tot (1 - g) (1 - u^2)``;
          untied: ``da_i = dc_tot u s'(i)``, ``da_u = dc_tot i (1 - u^2)``
        - to step ``t - 1``: ``dc = dc_tot g``, ``dh = da W`` (zeroed in rows reset at ``t``)
        - ``dW = sum_t da_t^T h_{t-1}`` (``h_{t-1}`` zero in reset rows), ``dxproj_t = da_t``.

        Every factor but ``dc_tot`` and ``dh`` is known before the loop, so ``K`` holds them for all T
        (``da = dc_tot K`` block by block, ``da_o = dh K_o``) and the loop is three products and a
        matmul per step."""
        w_hh, h0, c0, reset_mask, S, U, C, Y, Hs, G = ctx.saved_tensors
        L, reset_steps = ctx.layout, ctx.reset_steps
        T, B, H = Hs.shape
        if grad_h is None:
            grad_h = torch.zeros_like(Hs)

        # Everything that does not depend on the carried dh/dc, for all T at once.
        sl = L.slices
        C_prev = _shifted_states(c0, C, reset_mask)
        f, o = S[..., sl["f"]], S[..., sl["o"]]
        dS = torch.addcmul(S, S, S, value=-1.0)  # sigmoid derivative of every sigmoid block
        g = G if L.refine else f
        K_c = torch.addcmul(o, o * Y, Y, value=-1.0)  # dc_tot += dh * o (1 - y^2)
        K_o = Y * dS[..., sl["o"]]  # da_o = dh * K_o
        # Factors of dc_tot for every other block; the o block stays zero here.
        K = torch.empty(T, B, L.size, dtype=S.dtype, device=S.device)
        K[..., sl["o"]] = 0.0
        dg_factor = C_prev.sub_(U) if L.tied_input else C_prev  # dc_tot -> dg
        if L.refine:
            r = S[..., sl["r"]]
            dg_factor = dg_factor.mul_(2.0)
            torch.mul(torch.addcmul(f + r, r, f, value=-2.0).mul_(dg_factor), dS[..., sl["f"]],
                      out=K[..., sl["f"]])  # dg/df = 2 (f + r - 2 r f)
            torch.mul(dS[..., sl["f"]] * dg_factor, dS[..., sl["r"]], out=K[..., sl["r"]])
        else:
            torch.mul(dg_factor, dS[..., sl["f"]], out=K[..., sl["f"]])
        one_minus_u2 = torch.addcmul(torch.ones_like(U), U, U, value=-1.0)
        if L.tied_input:
            torch.mul(torch.sub(1.0, g), one_minus_u2, out=K[..., sl["u"]])
        else:
            torch.mul(U, dS[..., sl["i"]], out=K[..., sl["i"]])
            torch.mul(S[..., sl["i"]], one_minus_u2, out=K[..., sl["u"]])
        K = K.view(T, B, len(L.names), H)

        dgates = torch.empty(T, B, L.size, dtype=S.dtype, device=S.device)
        dgates_blocks = dgates.view(T, B, len(L.names), H)
        so = L.slices["o"]
        dh = torch.zeros_like(h0)
        dc = grad_c_last.clone() if grad_c_last is not None else torch.zeros_like(c0)
        for t in range(T - 1, -1, -1):
            dh = dh + grad_h[t]
            dc = torch.addcmul(dc, dh, K_c[t])
            torch.mul(dc.unsqueeze(1), K[t], out=dgates_blocks[t])
            torch.mul(dh, K_o[t], out=dgates[t][:, so])
            dc = dc * g[t]
            dh = dgates[t] @ w_hh
            if t in reset_steps:
                dh = dh.masked_fill(reset_mask[t], 0.0)
                dc = dc.masked_fill(reset_mask[t], 0.0)
        H_prev = _shifted_states(h0, Hs, reset_mask)
        grad_w = dgates.reshape(T * B, L.size).t() @ H_prev.reshape(T * B, H)
        return dgates, grad_w, dh, dc, None, None, None


class GRURecurrence(torch.autograd.Function):
    """``(xproj [T,B,G], w_hh [G,H], b_hh [G], h0 [B,H]) -> h [T,B,H]`` (torch's reset-after GRU)."""

    @staticmethod
    def forward(ctx, xproj, w_hh, b_hh, h0, reset_mask, reset_steps, layout):
        T, B, _ = xproj.shape
        H, L = layout.hidden_size, layout
        nsig = L.num_sigmoid * H
        S = xproj.new_empty(T, B, nsig)
        HP = xproj.new_empty(T, B, L.size)
        N = xproj.new_empty(T, B, H)
        Hs = xproj.new_empty(T, B, H)
        G = xproj.new_empty(T, B, H) if L.refine else None
        w_t = w_hh.t()
        h = h0
        for t in range(T):
            if t in reset_steps:
                h = h.masked_fill(reset_mask[t], 0.0)
            hp = torch.addmm(b_hh, h, w_t, out=HP[t])
            h = gru_pointwise(xproj[t], hp, h, L, S[t], N[t], None if G is None else G[t], Hs[t])
        ctx.layout = L
        ctx.reset_steps = reset_steps
        ctx.save_for_backward(w_hh, h0, reset_mask, S, HP, N, Hs, G)
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        """The derivation, per step ``t`` (torch's reset-after GRU; ``s`` the sigmoid):

        forward: ``hp = h_{t-1} W^T + b_hh``; ``r, z, q = s(xp + hp)`` block by block; ``n = tanh(xp_n
        + r hp_n)``; ``g = z`` or refined ``z^2 + 2 q z (1 - z)``; ``h_t = n + g (h_{t-1} - n)``.

        With ``dh`` (from the loss at ``t`` plus from step ``t + 1``):

        - ``da_n = dh (1 - g) (1 - n^2)`` (``K_n``); ``dxp_n = da_n``, ``dhp_n = da_n r``
        - ``dhp_r = da_n hp_n s'(r)``
        - ``dg = dh (h_{t-1} - n)`` (``dg_factor``); ``dhp_z = dg s'(z)``, or refined
          ``dg 2 (z + q - 2 q z) s'(z)`` and ``dhp_q = dg 2 z (1 - z) s'(q)``
        - the sigmoid blocks share their pre-activation: ``dxp = dhp`` there
        - to step ``t - 1``: ``dh = dh g + dhp W`` (zeroed in rows reset at ``t``)
        - ``dW = sum_t dhp_t^T h_{t-1}``, ``db_hh = sum_t dhp_t``.

        Every factor of ``dh`` is known before the loop (``K``), so the loop is a product and one
        ``addmm`` per step."""
        w_hh, h0, reset_mask, S, HP, N, Hs, G = ctx.saved_tensors
        if grad_h is None:
            grad_h = torch.zeros_like(Hs)
        L, reset_steps = ctx.layout, ctx.reset_steps
        T, B, H = Hs.shape
        nsig = L.num_sigmoid * H
        H_prev = _shifted_states(h0, Hs, reset_mask)
        r, z = S[..., L.slices["r"]], S[..., L.slices["z"]]
        dS = S - S * S
        g = G if L.refine else z
        hn = HP[..., nsig:]
        K_n = (1.0 - g) * (1.0 - N * N)  # d pre-activation of n per dh
        dg_factor = H_prev - N
        # Factors of dh giving the gradient of the recurrent projection hp, block by block.
        K = torch.empty(T, B, L.size, dtype=S.dtype, device=S.device)
        K[..., L.slices["r"]] = K_n * hn * dS[..., L.slices["r"]]
        if L.refine:
            q = S[..., L.slices["q"]]
            K[..., L.slices["z"]] = dg_factor * 2.0 * (z + q - 2.0 * q * z) * dS[..., L.slices["z"]]
            K[..., L.slices["q"]] = dg_factor * 2.0 * (z - z * z) * dS[..., L.slices["q"]]
        else:
            K[..., L.slices["z"]] = dg_factor * dS[..., L.slices["z"]]
        K[..., L.slices["n"]] = K_n * r
        K = K.view(T, B, len(L.names), H)

        dhp = torch.empty(T, B, L.size, dtype=S.dtype, device=S.device)
        dhp_blocks = dhp.view(T, B, len(L.names), H)
        dH = torch.empty(T, B, H, dtype=S.dtype, device=S.device)
        dh = torch.zeros_like(h0)
        for t in range(T - 1, -1, -1):
            dh = torch.add(dh, grad_h[t], out=dH[t])
            torch.mul(dh.unsqueeze(1), K[t], out=dhp_blocks[t])
            dh = torch.addmm(dh * g[t], dhp[t], w_hh)
            if t in reset_steps:
                dh = dh.masked_fill(reset_mask[t], 0.0)
        dxproj = dhp.clone()
        dxproj[..., nsig:] = dH * K_n
        grad_w = dhp.reshape(T * B, L.size).t() @ H_prev.reshape(T * B, H)
        grad_b = dhp.sum(dim=(0, 1))
        return dxproj, grad_w, grad_b, dh, None, None, None
