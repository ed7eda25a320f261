"""Forward+backward time and peak memory of cores over the unroll length, next to ``torch.nn.LSTM``.

    python benchmarks/scan_speed.py [--lengths 64,128,256,512,1024,2048,4096]
        [--cores lstm,ur_lstm,min_gru,ur_min_gru,lru] [--B 16] [--F 128] [--H 128] [--rounds 5]
        [--threads 1] [--reset-rate 0.0033] [--no-memory]

``lstm`` is ``torch.nn.LSTM(F, H)``; ``projection:blocks=K`` is ``nn.Linear(F, K H)`` alone, the floor
of any core whose gates and candidate all come from one input projection (``K = 3`` for
``ur_min_gru``: no such core can be faster); any other name goes to ``cores.make_core``, with options
after a colon: ``ur_min_gru:mlp_expansion=0,num_layers=2``. Per length every core runs forward+backward of one
unroll (``x [T, B, F]``, episode starts at ``--reset-rate``) ``--rounds`` times; each round runs every
core once, in an order rotated round by round, so load drifts hit all of them alike. Printed: the
median time, its ratio to ``nn.LSTM`` (and to ``ur_lstm`` when listed), both ratios of medians from
the same rounds, and the peak CPU memory that tensors allocated during one more, untimed,
forward+backward hold at once (``torch.profiler`` with ``profile_memory``: the running sum of its
allocation records, so saved activations, temporaries and the parameter gradients count; the inputs,
the parameters, allocator caching and Python objects do not).
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cores import make_core  # noqa: E402
from cores.memory import retain_freed_memory  # noqa: E402

DEFAULT_CORES = "lstm,ur_lstm,min_gru,ur_min_gru,lru"


def parse_spec(spec: str) -> tuple[str, dict]:
    """``name:key=value,key=value`` -> ``(name, options)``; values are Python literals."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    return name, options


def build(spec: str, F: int, H: int):
    """``(module, train_fn(x, is_first))`` for one core spec."""
    name, options = parse_spec(spec)
    if name == "projection":  # a floor, not a core: the input projection alone
        module = torch.nn.Linear(F, options.get("blocks", 3) * H)

        def train(x, is_first):
            module(x).sum().backward()

        return module, train
    if name == "lstm":
        module = torch.nn.LSTM(F, H, **options)

        def train(x, is_first):  # nn.LSTM has no resets; it runs the same unroll without them
            zeros = x.new_zeros(1, x.shape[1], H)
            y, _ = module(x, (zeros, zeros))
            y.sum().backward()
    else:
        module = make_core(name, F, H, **options)

        def train(x, is_first):
            y, _ = module(x, module.initial_state(x.shape[1]), is_first)
            y.sum().backward()
    return module, train


def peak_memory_mb(fn) -> float:
    """Peak of the bytes allocated by tensors while ``fn()`` runs, over those held before it: the
    running sum of the allocation records of ``torch.profiler(profile_memory=True)`` (CPU allocator)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    stderr = os.dup(2)  # the profiler's C++ side logs its start and stop on stderr
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
    records, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            records.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    held = peak = 0
    for _, size in sorted(records):
        held += size
        peak = max(peak, held)
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="64,128,256,512,1024,2048,4096")
    parser.add_argument("--cores", default=DEFAULT_CORES,
                        help="core specs separated by ',' (by ';' when an option list holds commas)")
    parser.add_argument("--B", type=int, default=16)
    parser.add_argument("--F", type=int, default=128)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reset-rate", type=float, default=1 / 300)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    args = parser.parse_args()
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # ';' separates specs whose options hold commas: "lstm;ur_min_gru:mlp_expansion=0,num_layers=2"
    specs = [s for s in (args.cores.split(";") if ";" in args.cores else args.cores.split(",")) if s]
    lengths = [int(t) for t in args.lengths.split(",")]
    F, H, B = args.F, args.H, args.B
    cores = {}
    for spec in specs:
        start = time.perf_counter()
        module, train = build(spec, F, H)
        train(torch.randn(8, B, F), torch.zeros(8, B, dtype=torch.bool))
        cores[spec] = (module, train, time.perf_counter() - start)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); B={B} F={F} H={H}; "
          f"{args.rounds} rounds; loadavg {Path('/proc/loadavg').read_text().split()[:3]}")
    print("first call (construction + forward+backward at T=8), s: "
          + ", ".join(f"{spec} {first:.2f}" for spec, (_, _, first) in cores.items()))
    ref_name = "ur_lstm" if "ur_lstm" in cores else None
    header = f"{'T':>5} {'core':<28} {'ms':>9} {'/nn.LSTM':>9}"
    header += f" {'/ur_lstm':>9}" if ref_name else ""
    header += "" if args.no_memory else f" {'peak MB':>9}"
    print(header)
    for T in lengths:
        g = torch.Generator().manual_seed(T)
        x = torch.randn(T, B, F, generator=g)
        is_first = torch.rand(T, B, generator=g) < args.reset_rate
        times = {spec: [] for spec in cores}
        for _, train, _ in cores.values():
            train(x, is_first)  # warm-up at this length
        order = list(cores)
        for r in range(args.rounds):
            for spec in order[r % len(order):] + order[: r % len(order)]:
                train = cores[spec][1]
                start = time.perf_counter()
                train(x, is_first)
                times[spec].append(time.perf_counter() - start)
        medians = {spec: statistics.median(v) for spec, v in times.items()}
        for spec in cores:
            line = f"{T:>5} {spec:<28} {medians[spec] * 1e3:>9.1f}"
            line += f" {medians[spec] / medians['lstm']:>9.2f}" if "lstm" in medians else f" {'-':>9}"
            if ref_name:
                line += f" {medians[spec] / medians[ref_name]:>9.3f}"
            if not args.no_memory:
                module, train, _ = cores[spec]
                module.zero_grad(set_to_none=True)
                line += f" {peak_memory_mb(lambda t=train, x=x, r=is_first: t(x, r)):>9.1f}"
            print(line, flush=True)
    print(f"loadavg at the end {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
