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


class LSTMLayout:
    """Row blocks of the LSTM-family pre-activation: sigmoid gates first, then the candidate ``u``.

    ``i`` exists only with an untied input gate, ``r`` only with the refine gate.
    """

    def __init__(self, hidden_size: int, tied_input: bool, refine: bool):
        names = ([] if tied_input else ["i"]) + ["f"] + (["r"] if refine else []) + ["o", "u"]
        self.names = tuple(names)
        self.hidden_size = hidden_size
        self.tied_input = tied_input
        self.refine = refine
        self.num_sigmoid = len(names) - 1
        H = hidden_size
        self.slices = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(names)}
        self.size = len(names) * H


class GRULayout:
    """Row blocks of the GRU-family pre-activation: ``r`` (reset), ``z`` (retain), ``q`` (refine of z,
    optional), then the candidate ``n``; the same order for the input and the recurrent projection."""

    def __init__(self, hidden_size: int, refine: bool):
        names = ["r", "z"] + (["q"] if refine else []) + ["n"]
        self.names = tuple(names)
        self.hidden_size = hidden_size
        self.refine = refine
        self.num_sigmoid = len(names) - 1
        H = hidden_size
        self.slices = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(names)}
        self.size = len(names) * H


def _shifted_states(first: Tensor, seq: Tensor, reset_mask: Tensor | None) -> Tensor:
    """``[first, seq[0], ..., seq[T-2]]`` with reset rows zeroed: the state each step started from."""
    prev = torch.cat([first.unsqueeze(0), seq[:-1]])
    return prev.masked_fill(reset_mask, 0.0) if reset_mask is not None else prev


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
        Hs = xproj.new_empty(T, B, H)
        G = xproj.new_empty(T, B, H) if L.refine else None
        w_t = w_hh.t()
        sf, so = L.slices["f"], L.slices["o"]
        h, c = h0, c0
        for t in range(T):
            if t in reset_steps:
                h = h.masked_fill(reset_mask[t], 0.0)
                c = c.masked_fill(reset_mask[t], 0.0)
            gates = torch.addmm(xproj[t], h, w_t)
            s = torch.sigmoid(gates[:, :nsig], out=S[t])
            u = torch.tanh(gates[:, nsig:], out=U[t])
            f = s[:, sf]
            if L.refine:
                r = s[:, L.slices["r"]]
                g = torch.mul(f, torch.add(f, torch.addcmul(r, r, f, value=-1.0), alpha=2.0),
                              out=G[t])
            else:
                g = f
            if L.tied_input:
                c = torch.addcmul(u, g, c - u, out=C[t])
            else:
                c = torch.addcmul(g * c, s[:, L.slices["i"]], u, out=C[t])
            h = torch.mul(s[:, so], torch.tanh(c), out=Hs[t])
        ctx.layout = L
        ctx.reset_steps = reset_steps
        ctx.save_for_backward(w_hh, h0, c0, reset_mask, S, U, C, Hs, G)
        return Hs, C[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h, grad_c_last):
        w_hh, h0, c0, reset_mask, S, U, C, Hs, G = ctx.saved_tensors
        L, reset_steps = ctx.layout, ctx.reset_steps
        T, B, H = Hs.shape
        if grad_h is None:
            grad_h = torch.zeros_like(Hs)

        # Everything that does not depend on the carried dh/dc, for all T at once.
        Y = torch.tanh(C)
        C_prev = _shifted_states(c0, C, reset_mask)
        f = S[..., L.slices["f"]]
        o = S[..., L.slices["o"]]
        dS = S - S * S  # sigmoid derivative of every sigmoid block
        g = G if L.refine else f
        K_c = o * (1.0 - Y * Y)  # dc_tot += dh * K_c
        K_o = Y * dS[..., L.slices["o"]]  # da_o = dh * K_o
        # Factors of dc_tot for every other block; the o block stays zero here.
        K = torch.zeros(T, B, L.size, dtype=S.dtype, device=S.device)
        dg_factor = C_prev - U if L.tied_input else C_prev
        if L.refine:
            r = S[..., L.slices["r"]]
            K[..., L.slices["f"]] = dg_factor * 2.0 * (f + r - 2.0 * r * f) * dS[..., L.slices["f"]]
            K[..., L.slices["r"]] = dg_factor * 2.0 * (f - f * f) * dS[..., L.slices["r"]]
        else:
            K[..., L.slices["f"]] = dg_factor * dS[..., L.slices["f"]]
        if L.tied_input:
            K[..., L.slices["u"]] = (1.0 - g) * (1.0 - U * U)
        else:
            i = S[..., L.slices["i"]]
            K[..., L.slices["i"]] = U * dS[..., L.slices["i"]]
            K[..., L.slices["u"]] = i * (1.0 - U * U)
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
        sr, sz = L.slices["r"], L.slices["z"]
        h = h0
        for t in range(T):
            if t in reset_steps:
                h = h.masked_fill(reset_mask[t], 0.0)
            hp = torch.addmm(b_hh, h, w_t, out=HP[t])
            s = torch.add(xproj[t, :, :nsig], hp[:, :nsig], out=S[t]).sigmoid_()
            n = torch.addcmul(xproj[t, :, nsig:], s[:, sr], hp[:, nsig:], out=N[t]).tanh_()
            z = s[:, sz]
            if L.refine:
                q = s[:, L.slices["q"]]
                g = torch.mul(z, torch.add(z, torch.addcmul(q, q, z, value=-1.0), alpha=2.0),
                              out=G[t])
            else:
                g = z
            h = torch.addcmul(n, g, h - n, out=Hs[t])
        ctx.layout = L
        ctx.reset_steps = reset_steps
        ctx.save_for_backward(w_hh, h0, reset_mask, S, HP, N, Hs, G)
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
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
