"""Speed of every registered core, as ratios to ``torch.nn.LSTM`` measured in the same run.

    python benchmarks/cores.py [--threads 2] [--rounds 7] [--cores ur_lstm,lstm]

Prints, per core: forward+backward of an unroll (T=80, B=32, F=128, H=256), single-step inference
(B=16, no grad), and the first-call cost (construction + first forward+backward). Candidate and
reference are timed in alternating rounds and the ratio is of medians, so load drifts affect both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cores import available_cores, make_core  # noqa: E402
from cores.memory import retain_freed_memory  # noqa: E402


def _time(fn, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def paired_ratio(candidate, reference, rounds: int, iters: int) -> tuple[float, float]:
    """Median time of ``candidate`` over median time of ``reference``, rounds interleaved."""
    candidate(), reference()
    cand, ref = [], []
    for _ in range(rounds):
        ref.append(_time(reference, iters))
        cand.append(_time(candidate, iters))
    return statistics.median(cand) / statistics.median(ref), statistics.median(ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cores", default="", help="comma-separated names (default: all)")
    parser.add_argument("--T", type=int, default=80)
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--F", type=int, default=128)
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--step-batch", type=int, default=16)
    parser.add_argument("--no-retain-memory", action="store_true",
                        help="leave glibc's default of unmapping freed large blocks")
    args = parser.parse_args()
    retained = False if args.no_retain_memory else retain_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, B, F, H = args.T, args.B, args.F, args.H
    names = [n for n in args.cores.split(",") if n] or available_cores()

    x = torch.randn(T, B, F)
    is_first = torch.zeros(T, B, dtype=torch.bool)
    reference = torch.nn.LSTM(F, H)
    zeros = torch.zeros(1, B, H)

    def ref_train():
        y, _ = reference(x, (zeros, zeros))
        y.sum().backward()

    xs = torch.randn(args.step_batch, F)
    step_zeros = torch.zeros(1, args.step_batch, H)

    def ref_step():
        with torch.no_grad():
            reference(xs.unsqueeze(0), (step_zeros, step_zeros))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"unroll T={T} B={B} F={F} H={H}; step B={args.step_batch}; "
          f"freed memory retained: {retained}")
    print(f"{'core':<10} {'fwd+bwd / nn.LSTM':>18} {'step / nn.LSTM':>15} {'first call s':>13}")
    ref_ms = ref_step_us = 0.0
    for name in names:
        start = time.perf_counter()
        core = make_core(name, F, H)
        state = core.initial_state(B)
        y, _ = core(x, state, is_first)
        y.sum().backward()
        first_call = time.perf_counter() - start

        def train(core=core, state=state):
            y, _ = core(x, state, is_first)
            y.sum().backward()

        step_state = core.initial_state(args.step_batch)

        def step(core=core, state=step_state):
            with torch.no_grad():
                core.step(xs, state)

        train_ratio, ref_ms = paired_ratio(train, ref_train, args.rounds, iters=3)
        step_ratio, ref_step_us = paired_ratio(step, ref_step, args.rounds, iters=50)
        print(f"{name:<10} {train_ratio:>18.2f} {step_ratio:>15.2f} {first_call:>13.2f}")
    print(f"reference nn.LSTM: fwd+bwd {ref_ms * 1e3:.1f} ms, step {ref_step_us * 1e6:.0f} us "
          "(last round's medians)")


if __name__ == "__main__":
    main()
