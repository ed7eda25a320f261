"""Where the time of a fused UR-LSTM forward+backward goes, piece by piece.

    python benchmarks/core_breakdown.py [--threads 2]

Prints (T=80, B=32, F=128, H=256, the shapes of ``benchmarks/cores.py``): the full forward+backward of
``ur_lstm`` and ``nn.LSTM``; the matrix products alone (per-step recurrent ``addmm`` forward and
backward, the weight- and input-gradient products); ``tanh`` against ``sigmoid`` on one step's
tensor. Run it with and without ``--no-retain-memory`` to see what the page faults of unmapped
freed blocks cost (glibc's default cannot be restored within one process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cores import make_core  # noqa: E402
from cores.memory import retain_freed_memory  # noqa: E402


def median_time(fn, repeats: int, inner: int = 1) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-retain-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retained = False if args.no_retain_memory else retain_freed_memory()
    T, B, F, H = 80, 32, 128, 256
    torch.manual_seed(0)
    x = torch.randn(T, B, F)
    core = make_core("ur_lstm", F, H)
    state = core.initial_state(B)
    reference = torch.nn.LSTM(F, H)
    zeros = torch.zeros(1, B, H)
    G = core.layers[0].weight_hh.shape[0]
    w_hh = core.layers[0].weight_hh.detach()
    w_ih = core.layers[0].weight_ih.detach()
    h, xp, dgates = torch.randn(B, H), torch.randn(T, B, G), torch.randn(B, G)
    big_d, big_h, big_x = torch.randn(T * B, G), torch.randn(T * B, H), torch.randn(T * B, F)
    c = torch.randn(B, H)

    rows = {
        "ur_lstm forward+backward": median_time(
            lambda: core(x, state)[0].sum().backward(), 9),
        "nn.LSTM forward+backward": median_time(
            lambda: reference(x, (zeros, zeros))[0].sum().backward(), 9),
        "recurrent addmm, forward, x T": T * median_time(
            lambda: torch.addmm(xp[0], h, w_hh.t()), 9, inner=50),
        "recurrent mm, backward, x T": T * median_time(lambda: dgates @ w_hh, 9, inner=50),
        "weight_hh gradient (one mm)": median_time(lambda: big_d.t() @ big_h, 9),
        "weight_ih gradient (one mm)": median_time(lambda: big_d.t() @ big_x, 9),
        "input projection (one mm)": median_time(lambda: big_x @ w_ih.t(), 9),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, freed memory retained: "
          f"{retained}; T={T} B={B} F={F} H={H}")
    for name, seconds in rows.items():
        print(f"{name:<34} {seconds * 1e3:8.2f} ms")
    tanh = median_time(lambda: torch.tanh(c), 9, inner=200)
    sigmoid = median_time(lambda: torch.sigmoid(c), 9, inner=200)
    print(f"{'tanh / sigmoid on [B, H]':<34} {tanh / sigmoid:8.2f} x  "
          f"({tanh * 1e6:.1f} us vs {sigmoid * 1e6:.1f} us)")


if __name__ == "__main__":
    main()
