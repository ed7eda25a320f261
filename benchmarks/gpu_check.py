"""CUDA parity and speed of every registered core (run wherever a GPU is available; CI has none).

    python benchmarks/gpu_check.py [--cores ur_lstm,lstm] [--T 80 --B 32 --F 128 --H 256]

For each core: outputs, final state and all parameter gradients of one unroll with resets on the GPU
against the same core on the CPU (fp32, max abs difference reported, fails above ``--tol``); then
forward+backward time on the GPU as a ratio to ``torch.nn.LSTM`` (cuDNN) of the same size.
Then the learner: one ``Learner.update`` of the minigrid_memory preset's agent (MiniGrid-MemoryS7, ur_lstm)
on a batch of ``--learner-batch`` unrolls held in memory, frames/s on the device and on the CPU.
Last, ``train_agent.py`` end to end with ``--device`` (async IMPALA, learner on the device, actors on
the CPU): a short run, a resume from its checkpoint, an evaluation.
Exits 1 if any core breaks parity or the end-to-end run fails.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.learner_speed import learner_rate  # noqa: E402
from configs import load_config  # noqa: E402
from cores import available_cores, make_core  # noqa: E402


def run(core, x, state, is_first):
    core.zero_grad(set_to_none=True)
    y, final = core(x, state, is_first)
    (y.square().mean() + sum(s.square().mean() for s in final)).backward()
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
             for p in core.parameters()]
    return y.detach(), [s.detach() for s in final], grads


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def gpu_time(fn, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def train_end_to_end(device: str) -> bool:
    """``train_agent.py`` with the learner on ``device``: 20k frames, a resume to 40k, an evaluation."""
    with tempfile.TemporaryDirectory() as logdir:
        base = [sys.executable, str(ROOT / "train_agent.py"), "--logdir", logdir]
        steps = {
            "train": ["--config", "recall_easy", "--runtime", "async", "--agent", "impala",
                      "--device", device, "--total-frames", "20000"],
            "resume": ["--total-frames", "40000"],
            "eval": ["--eval", "--episodes", "20"],
        }
        for step, args in steps.items():
            result = subprocess.run(base + args, cwd=ROOT, capture_output=True, text=True, timeout=600)
            lines = result.stdout.strip().splitlines() or [""]
            summary = next((line for line in lines if line.startswith(("done:", "mean return"))), lines[-1])
            print(f"train_agent.py {step} on {device}: exit {result.returncode}; {summary}", flush=True)
            if result.returncode != 0:
                print(result.stderr[-2000:])
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="")
    parser.add_argument("--T", type=int, default=80)
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--F", type=int, default=128)
    parser.add_argument("--H", type=int, default=256)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    parser.add_argument("--learner-batch", type=int, default=8, help="unrolls per learner batch")
    parser.add_argument("--seconds", type=float, default=5.0, help="learner timing per device and batch")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(args.device)
    T, B, F, H = args.T, args.B, args.F, args.H
    names = [n for n in args.cores.split(",") if n] or available_cores()
    torch.manual_seed(0)
    x = torch.randn(T, B, F)
    is_first = torch.rand(T, B) < 0.05
    reference = torch.nn.LSTM(F, H).to(dev)
    zeros = torch.zeros(1, B, H, device=dev)
    xd = x.to(dev)
    ref_time = gpu_time(lambda: reference(xd, (zeros, zeros))[0].sum().backward())
    where = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu (dry run)"
    print(f"torch {torch.__version__} on {where}; T={T} B={B} F={F} H={H}; "
          f"nn.LSTM (cuDNN) forward+backward {ref_time * 1e3:.2f} ms\n")
    print("| core | max abs diff, outputs | states | gradients | fwd+bwd ms | / nn.LSTM |")
    print("|---|---:|---:|---:|---:|---:|")
    failed = []
    for name in names:
        torch.manual_seed(1)
        cpu = make_core(name, F, H)
        gpu = copy.deepcopy(cpu).to(dev)
        state = tuple(torch.randn_like(s) for s in cpu.initial_state(B))
        state = type(cpu.initial_state(B))(*state) if state else ()
        y_c, s_c, g_c = run(cpu, x, state, is_first)
        state_d = type(state)(*(s.to(dev) for s in state)) if state else ()
        y_g, s_g, g_g = run(gpu, xd, state_d, is_first.to(dev))
        dy = (y_c - y_g.cpu()).abs().max().item()
        ds = max([(a - b.cpu()).abs().max().item() for a, b in zip(s_c, s_g, strict=True)] or [0.0])
        dg = max((a - b.cpu()).abs().max().item() for a, b in zip(g_c, g_g, strict=True))
        seconds = gpu_time(lambda gpu=gpu, state_d=state_d: gpu(xd, state_d, None)[0].sum().backward())
        print(f"| {name} | {dy:.1e} | {ds:.1e} | {dg:.1e} | {seconds * 1e3:.2f} | "
              f"{seconds / ref_time:.1f} |", flush=True)
        if max(dy, ds, dg) > args.tol:
            failed.append(name)
    if failed:
        print(f"\nPARITY FAILED (> {args.tol}): {', '.join(failed)}")
        return 1
    print(f"\nall {len(names)} cores match their CPU results within {args.tol}")
    for batch in (1, args.learner_batch):
        rates = {d: learner_rate(load_config("minigrid_memory"), torch.device(d), batch, args.seconds)
                 for d in (args.device, "cpu")}
        print(f"learner (minigrid_memory preset, {batch} unroll(s) of 80 x 16): "
              f"{rates[args.device]:,.0f} frames/s "
              f"on {args.device}, {rates['cpu']:,.0f} on cpu", flush=True)
    return 0 if train_end_to_end(args.device) else 1


if __name__ == "__main__":
    sys.exit(main())
