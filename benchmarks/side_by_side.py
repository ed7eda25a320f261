"""Two training runs side by side on one machine: how much of its solo speed each keeps.

    python benchmarks/side_by_side.py [--config popgym] [--seconds 40]

    python benchmarks/side_by_side.py --threads 2 --policies "libgomp default,PASSIVE"

Each case trains through ``train_agent.py`` (subprocesses with fresh run directories) for
``--seconds`` of wall time, then stops it with SIGINT; frames/s is the median ``perf/sps`` of its
``metrics.jsonl`` after the first log. Cases: a sync run alone, an async run alone, sync beside async,
async beside async. Each under libgomp's default wait policy (idle OpenMP threads spin a while before
they sleep) and under ``OMP_WAIT_POLICY=PASSIVE`` (they sleep at once), at the program's default
``--threads`` or the one given. Run nothing else meanwhile: the point is what two runs do to each
other.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"sync alone": ("sync",), "async alone": ("async",), "sync + async": ("sync", "async"),
         "async + async": ("async", "async")}
POLICIES = {"libgomp default": "", "PASSIVE": "PASSIVE"}  # the value of OMP_WAIT_POLICY ("" = unset)


def median_sps(logdir: Path) -> float:
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    rates = [row["perf/sps"] for row in rows[1:] if "perf/sps" in row]
    return statistics.median(rates) if rates else float("nan")


def run_case(runtimes: tuple[str, ...], policy: str, args, workdir: Path) -> list[float]:
    """Start one run per entry of ``runtimes`` at once; their median frames/s."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    procs, logdirs = [], []
    for i, runtime in enumerate(runtimes):
        logdir = Path(tempfile.mkdtemp(dir=workdir)) / f"run{i}"
        cmd = [sys.executable, str(ROOT / "train_agent.py"), "--config", args.config, "--runtime", runtime,
               "--total-frames", "1000000000", "--log-every-s", "2", "--logdir", str(logdir)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        logdirs.append(logdir)
    time.sleep(args.seconds)
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        proc.wait(timeout=120)
    return [median_sps(logdir) for logdir in logdirs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="popgym")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--threads", type=int, help="--threads of every run (default: the program's)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of: "
                        + ", ".join(POLICIES))
    args = parser.parse_args(argv)
    threads = f"--threads {args.threads}" if args.threads else "the default --threads"
    print(f"--config {args.config}, {threads}, {args.seconds:g} s per case, {os.cpu_count()} CPUs; frames/s "
          "(median), and the share of the same runtime's solo rate", flush=True)
    print("| wait policy | case | frames/s | share of solo |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for policy_name in args.policies.split(","):
            policy = POLICIES[policy_name]
            solo: dict[str, float] = {}
            for case in args.cases.split(","):
                runtimes = CASES[case]
                rates = run_case(runtimes, policy, args, Path(tmp))
                if len(runtimes) == 1:
                    solo[runtimes[0]] = rates[0]
                shares = " / ".join(f"{rate / solo[r]:.0%}" if r in solo else "-"
                                    for r, rate in zip(runtimes, rates, strict=True))
                print(f"| {policy_name} | {case} | {' / '.join(f'{r:,.0f}' for r in rates)} | {shares} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
