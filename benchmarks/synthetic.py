"""The synthetic memory tasks of Gu et al. (copy and adding), supervised, for any registered core.

    python benchmarks/synthetic.py --task copy --delay 200 --cores lstm,ur_lstm --seeds 0,1,2
    python benchmarks/synthetic.py --task adding --length 200 --cores lstm,ur_lstm
    python benchmarks/synthetic.py --task copy --paper      # delay 500, hidden 256, batch 10, 10k steps

Copy (Arjovsky et al. 2016): 10 symbols from 8, ``delay - 1`` blanks, a delimiter, 10 blanks; the
model must output blanks and then the 10 symbols. Chance cross-entropy is ``10 log 8 / (delay + 20)``.
Solved: recall accuracy >= 99% on a fresh batch of 256 sequences.

Adding (Hochreiter & Schmidhuber 1997): ``length`` steps of (value ~ U[0,1], marker); one marker in
each half; predict the sum of the two marked values. Chance MSE is 1/6. Solved: MSE < 0.01.

Each run writes one JSON line (config, evaluation curve, steps to solve, final loss) to
``--out`` (default ``benchmarks/results/synthetic/<task>.jsonl``) and prints a per-core summary.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cores import make_core  # noqa: E402
from cores.memory import retain_freed_memory  # noqa: E402

NUM_SYMBOLS, COPY_LENGTH = 8, 10
BLANK, DELIMITER = 0, NUM_SYMBOLS + 1
COPY_CLASSES = NUM_SYMBOLS + 2


def copy_batch(batch: int, delay: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inputs ``[T, B]`` and targets ``[T, B]`` (class ids), ``T = delay + 20``."""
    T = delay + 2 * COPY_LENGTH
    symbols = torch.randint(1, NUM_SYMBOLS + 1, (COPY_LENGTH, batch), generator=generator)
    inputs = torch.full((T, batch), BLANK, dtype=torch.long)
    targets = torch.full((T, batch), BLANK, dtype=torch.long)
    inputs[:COPY_LENGTH] = symbols
    inputs[T - COPY_LENGTH - 1] = DELIMITER
    targets[T - COPY_LENGTH :] = symbols
    return inputs, targets


def adding_batch(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inputs ``[T, B, 2]`` (value, marker) and targets ``[B]``."""
    values = torch.rand(length, batch, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, length, (batch,), generator=generator)
    markers = torch.zeros(length, batch)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1), targets


class SequenceModel(nn.Module):
    """Core plus a linear readout; ``x [T, B, F] -> [T, B, out]``."""

    def __init__(self, core_name: str, input_size: int, hidden: int, out: int, options: dict):
        super().__init__()
        self.core = make_core(core_name, input_size, hidden, **options)
        self.readout = nn.Linear(self.core.output_size, out)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.core(x, self.core.initial_state(x.shape[1]), None)
        return self.readout(y)


class CopyTask:
    input_size, output_size = COPY_CLASSES, COPY_CLASSES

    def __init__(self, delay: int):
        self.delay = delay
        self.chance = COPY_LENGTH * math.log(NUM_SYMBOLS) / (delay + 2 * COPY_LENGTH)

    def loss(self, model, batch, generator):
        inputs, targets = copy_batch(batch, self.delay, generator)
        logits = model(nn.functional.one_hot(inputs, COPY_CLASSES).float())
        loss = nn.functional.cross_entropy(logits.reshape(-1, COPY_CLASSES), targets.reshape(-1))
        recall = logits[-COPY_LENGTH:].argmax(-1) == targets[-COPY_LENGTH:]
        return loss, {"recall_accuracy": recall.float().mean().item()}

    def solved(self, metrics) -> bool:
        return metrics["recall_accuracy"] >= 0.99


class AddingTask:
    input_size, output_size = 2, 1
    chance = 1.0 / 6.0

    def __init__(self, length: int):
        self.length = length

    def loss(self, model, batch, generator):
        inputs, targets = adding_batch(batch, self.length, generator)
        prediction = model(inputs)[-1, :, 0]
        loss = nn.functional.mse_loss(prediction, targets)
        return loss, {"mse": loss.item()}

    def solved(self, metrics) -> bool:
        return metrics["mse"] < 0.01


def train_one(task, core_name: str, seed: int, args, options: dict) -> dict:
    """Train one core on one seed; returns the JSON record."""
    torch.manual_seed(seed)
    model = SequenceModel(core_name, task.input_size, args.hidden, task.output_size, options)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_gen = torch.Generator().manual_seed(10_000 + seed)
    eval_gen = torch.Generator().manual_seed(20_000 + seed)
    curve, solved_at, start = [], None, time.perf_counter()
    for step in range(1, args.steps + 1):
        loss, _ = task.loss(model, args.batch, train_gen)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimiser.step()
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                eval_loss, metrics = task.loss(model, args.eval_batch, eval_gen)
            point = {"step": step, "loss": eval_loss.item(), **metrics}
            curve.append(point)
            if solved_at is None and task.solved(metrics):
                solved_at = step
            if args.verbose:
                print(f"  {core_name} seed {seed} step {step}: {point}", flush=True)
            if solved_at is not None and args.stop_when_solved:
                break
    return {
        "core": core_name, "options": options, "seed": seed, "steps_to_solve": solved_at,
        "final": curve[-1], "chance_loss": task.chance, "curve": curve,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--core-option expects key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["copy", "adding"], default="copy")
    parser.add_argument("--cores", default="lstm,u_lstm,r_lstm,ur_lstm")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--delay", type=int, default=200, help="copy: blanks between cue and recall")
    parser.add_argument("--length", type=int, default=200, help="adding: sequence length")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stop-when-solved", action="store_true")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's sizes: copy delay 500 / adding 2000, hidden 256, "
                             "batch 10 (copy) or 50 (adding), 10k / 100k steps")
    parser.add_argument("--core-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--summarize", metavar="JSONL", default=None,
                        help="print the summary table of a results file and exit")
    args = parser.parse_args()
    if args.summarize:
        records = [json.loads(line) for line in Path(args.summarize).read_text().splitlines()]
        summarize(records, list(dict.fromkeys(r["core"] for r in records)))
        return
    if args.paper:
        args.delay, args.length, args.hidden = 500, 2000, 256
        args.batch, args.steps = (10, 10_000) if args.task == "copy" else (50, 100_000)
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    options = parse_options(args.core_option)
    task = CopyTask(args.delay) if args.task == "copy" else AddingTask(args.length)
    size = f"delay{args.delay}" if args.task == "copy" else f"length{args.length}"
    out = Path(args.out or Path(__file__).parent / "results" / "synthetic" / f"{args.task}_{size}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    cores = [c for c in args.cores.split(",") if c]
    for name in cores:
        make_core(name, task.input_size, args.hidden, **options)  # fail fast on a bad name/option
    command = " ".join(["python", "benchmarks/synthetic.py", *sys.argv[1:]])
    print(f"{args.task} {size}: chance loss {task.chance:.4f}; {command}", flush=True)
    records = []
    for name in cores:
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            record = train_one(task, name, seed, args, options)
            record.update(task=args.task, size=size, hidden=args.hidden, batch=args.batch,
                          lr=args.lr, steps=args.steps, command=command)
            records.append(record)
            with out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(f"{name:<8} seed {seed}: solved at {record['steps_to_solve']}, final "
                  f"{json.dumps(record['final'])}, {record['wall_seconds']} s", flush=True)
    summarize(records, cores)
    print(f"raw results appended to {out}")


def summarize(records: list[dict], cores: list[str]) -> None:
    """Per core: runs solved, median steps to solve, final losses (Markdown table)."""
    print("\n| core | solved | median steps to solve | final loss per seed | best loss per seed |")
    print("|---|---:|---:|---|---|")
    for name in cores:
        runs = sorted((r for r in records if r["core"] == name), key=lambda r: r["seed"])
        solved = [r["steps_to_solve"] for r in runs if r["steps_to_solve"] is not None]
        median = statistics.median(solved) if solved else "-"
        finals = ", ".join(f"{r['final']['loss']:.4f}" for r in runs)
        best = ", ".join(f"{min(p['loss'] for p in r['curve']):.4f}" for r in runs)
        print(f"| {name} | {len(solved)}/{len(runs)} | {median} | {finals} | {best} |")


if __name__ == "__main__":
    main()
