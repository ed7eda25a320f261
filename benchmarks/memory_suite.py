"""The core comparison suite: cores x tasks x seeds through ``train_agent.py``, resumable, with a report.

    python benchmarks/memory_suite.py quick                 # run (finished cells are skipped)
    python benchmarks/memory_suite.py quick --jobs 2        # two cells at once (the CPUs shared: 1 thread
                                                            # each on 2 CPUs; --threads N to choose)
    python benchmarks/memory_suite.py quick --report        # write docs/RESULTS.md tables (results, claims,
                                                            # time per cell from the runs) and docs/img/
    python benchmarks/memory_suite.py quick --tasks MiniGrid-MemoryS7 --cores lstm,ur_lstm

Suites are defined in ``benchmarks/suites.yaml`` (or ``--suites FILE``): seeds, cores, tasks (each a
preset or the program's defaults, flag ``options``, a frame budget and a threshold) and optional
``core_flags`` (flags for one core's runs, e.g. ``mlp: {previous_inputs: false}``), ``claims``
(``{claim, core, baseline}``: the report says on which tasks ``core`` learns faster than
``baseline``) and ``not_run_here`` (``{tasks, cores, reason}``: cells the project's 2-vCPU machine
does not run, and why; they are skipped unless ``--all-cells`` is given, and the report names them).
Each cell trains in ``<work>/<suite>/<task>/<core>/seed<S>`` (``runs/suites`` by
default, not committed), with the same command each time, so an interrupted cell resumes from its
checkpoint. While cells run, the suite prints where each one is every 5 minutes (frames, the delay
curriculum's stage, the latest window; ``--progress-every-s``). A finished cell writes one JSON file
to ``<results>/<suite>/<task>/<core>/seed<S>.json`` (``benchmarks/results`` by default, committed):

    suite, task, core, seed, command, machine, config (the resolved config.yaml), total_frames,
    threshold, curve [[frames, mean return of the last 100 episodes], ...], final_return (null where a
    delay curriculum never reached the task),
    success_curve [[frames, success rate of the last 100 episodes], ...] (empty where the task gives no
    verdicts), final_success (or null), verdicts (whether the task or its curriculum's stages gave
    verdicts: true for a task judged by its success rate even where the stages never passed),
    frames_to_threshold (or null), auc (mean of the curve over
    the budget; with a delay curriculum the stages' frames count 0; both of the success curve where
    there is one, else of the return's: suite_stats.scored_curve), task_from (the frame of the first
    window at the task where a delay curriculum trained stages first, 0 without stages, null if the
    stages never passed: the curves are the task's own), wall_s (this invocation's
    training time), resumed_from (frames the cell resumed from, 0 for a fresh start),
    gates {name: [{frames, limits, counts}, ...]} (histograms of the core's gates, up to 5 times;
    plus name_mean and name_above_0.99: [[frames, value], ...], the exact statistics of every log)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.atomic import replace_atomically  # noqa: E402
from benchmarks import suite_stats  # noqa: E402
from configs import as_flags  # noqa: E402

SUITES_FILE = ROOT / "benchmarks" / "suites.yaml"
GATE_SNAPSHOTS = 5
CURVE_POINTS = 200


@dataclass(frozen=True)
class Cell:
    suite: str
    task: str
    core: str
    seed: int
    spec: dict  # the task's entry in the suite file
    core_flags: dict | None = None  # the suite's core_flags of this core: flags for its runs only

    @property
    def key(self) -> Path:
        return Path(self.suite) / self.task / self.core / f"seed{self.seed}"


def load_suite(name: str, path: Path = SUITES_FILE) -> dict:
    suites = yaml.safe_load(Path(path).read_text())
    if name not in suites:
        raise SystemExit(f"memory_suite.py: error: unknown suite {name!r}; {path} defines "
                         f"{', '.join(suites)}")
    suite = suites[name]
    for task, spec in suite["tasks"].items():
        missing = {"total_frames", "threshold"} - set(spec)
        if missing:
            raise SystemExit(f"memory_suite.py: error: task {task!r} lacks {', '.join(sorted(missing))}")
    for claim in suite.get("claims") or []:
        keys = {"claim", "core", "baseline"}
        if not isinstance(claim, dict) or set(claim) != keys:
            raise SystemExit(f"memory_suite.py: error: a claim of suite {name!r} must have exactly the keys "
                             f"{', '.join(sorted(keys))}, got {claim!r}")
        unknown = [claim[k] for k in ("core", "baseline") if claim[k] not in suite["cores"]]
        if unknown:
            raise SystemExit(f"memory_suite.py: error: claim {claim['claim']!r} names "
                             f"{', '.join(map(str, unknown))}, not a core of suite {name!r} "
                             f"({', '.join(suite['cores'])})")
    for entry in suite.get("not_run_here") or []:
        check_not_run_here(name, suite, entry)
    return suite


def check_not_run_here(name: str, suite: dict, entry) -> None:
    """One ``not_run_here`` entry: ``{tasks: [...], cores: [...] or all, reason: "..."}``, naming the
    suite's own tasks and cores; anything else is an error in one line."""
    keys = {"tasks", "cores", "reason"}
    if not isinstance(entry, dict) or set(entry) != keys:
        raise SystemExit(f"memory_suite.py: error: a not_run_here entry of suite {name!r} must have exactly "
                         f"the keys {', '.join(sorted(keys))}, got {entry!r}")
    if not isinstance(entry["reason"], str) or not entry["reason"].strip():
        raise SystemExit(f"memory_suite.py: error: a not_run_here entry of suite {name!r} needs a reason, "
                         f"got {entry['reason']!r}")
    for kind, asked, known in (("task", entry["tasks"], list(suite["tasks"])),
                               ("core", entry["cores"], suite["cores"])):
        if kind == "core" and asked == "all":
            continue
        if not (isinstance(asked, list) and asked and all(isinstance(a, str) for a in asked)):
            raise SystemExit(f"memory_suite.py: error: not_run_here's {kind}s in suite {name!r} must be a "
                             f"list of {kind} names{' or all' if kind == 'core' else ''}, got {asked!r}")
        unknown = [a for a in asked if a not in known]
        if unknown:
            raise SystemExit(f"memory_suite.py: error: not_run_here in suite {name!r} names {kind} "
                             f"{', '.join(unknown)}, not in the suite ({', '.join(map(str, known))})")


def cells_of(name: str, suite: dict, tasks=None, cores=None, seeds=None) -> list[Cell]:
    """The suite's cells in task, core, seed order, limited to the ``tasks``, ``cores`` and ``seeds``
    given (each a subset of the suite's; one that is not in it is an error naming what is)."""
    for kind, asked, known in (("task", tasks, list(suite["tasks"])), ("core", cores, suite["cores"]),
                               ("seed", seeds, [int(s) for s in suite["seeds"]])):
        unknown = [a for a in asked or () if a not in known]
        if unknown:
            raise SystemExit(f"memory_suite.py: error: suite {name!r} has no {kind} "
                             f"{', '.join(map(str, unknown))}; it has {', '.join(map(str, known))}")
    chosen_tasks = [t for t in suite["tasks"] if not tasks or t in tasks]
    chosen_cores = [c for c in suite["cores"] if not cores or c in cores]
    chosen_seeds = [int(s) for s in suite["seeds"] if not seeds or int(s) in seeds]
    flags = suite.get("core_flags") or {}
    return [Cell(name, task, core, seed, suite["tasks"][task], flags.get(core))
            for task in chosen_tasks for core in chosen_cores for seed in chosen_seeds]


def train_command(cell: Cell, logdir: Path, threads: int) -> list[str]:
    spec = cell.spec
    preset = ["--config", spec["config"]] if spec.get("config") else []  # none: the program's defaults
    command = ["train_agent.py", *preset, "--core", cell.core, "--seed", str(cell.seed),
               "--total-frames", str(spec["total_frames"]), "--logdir", str(logdir),
               "--threads", str(threads), "--checkpoint-every-s", "30"]
    return command + as_flags({**(spec.get("options") or {}), **(cell.core_flags or {})})


def machine() -> str:
    model = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{os.cpu_count()} CPUs ({model}), torch {torch.__version__}, {platform.system()}"


def read_curve(logdir: Path, tag: str = "charts/mean_return_100") -> list[list[float]]:
    """``[[frames, value], ...]`` of ``tag`` in the run's metrics.jsonl, thinned to ``CURVE_POINTS``."""
    points = []
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if tag in row:
            points.append([int(row["frames"]), float(row[tag])])
    if len(points) > CURVE_POINTS:
        step = len(points) / CURVE_POINTS
        points = [points[int(i * step)] for i in range(CURVE_POINTS - 1)] + [points[-1]]
    return points


def task_start(logdir: Path) -> int | None:
    """Where the run's delay curriculum trained stages first (it logged ``curriculum/mean_return_100``),
    the frame of its first window at the task (``charts/mean_return_100``), or ``None`` if it never got
    there; 0 for a run without stages."""
    staged = False
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "charts/mean_return_100" in row:
            return int(row["frames"]) if staged else 0
        staged = staged or "curriculum/mean_return_100" in row
    return None if staged else 0


def cell_progress(logdir: Path, total_frames: int) -> str:
    """Where a running cell is, from the last rows of its metrics.jsonl: frames of its budget, the
    delay curriculum's stage (if it has one) and the latest window (success rate, else mean return)."""
    path = logdir / "metrics.jsonl"
    if not path.exists():
        return "starting"
    with path.open("rb") as handle:  # the tail only: a long cell's file grows to megabytes
        start = max(0, handle.seek(0, os.SEEK_END) - 65536)
        handle.seek(start)
        lines = handle.read().decode(errors="replace").splitlines()[1 if start else 0:]  # whole lines
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the trainer is writing that line now
            continue
    if not rows:
        return "starting"
    parts = [f"{rows[-1]['frames'] / 1e6:.2f}M of {total_frames / 1e6:.2f}M frames"]
    window = next((r for r in reversed(rows)
                   if "charts/mean_return_100" in r or "curriculum/mean_return_100" in r), None)
    if window is not None:
        prefix = "charts" if "charts/mean_return_100" in window else "curriculum"
        where = "the task" if prefix == "charts" else f"stage delay {window.get('curriculum/delay')}"
        score = window.get(f"{prefix}/success_rate_100")
        parts.append(f"{where}: " + (f"success {score:.2f}" if score is not None
                                     else f"return {window[f'{prefix}/mean_return_100']:.2f}"))
    return ", ".join(parts)


def read_gates(logdir: Path) -> dict:
    """Up to ``GATE_SNAPSHOTS`` evenly spaced histograms of every ``gates/<name>`` TensorBoard tag, and
    the ``gates/<name>_mean`` and ``gates/<name>_above_0.99`` series as ``[[frames, value], ...]``."""
    from tensorboard.backend.event_processing import event_accumulator

    # A resumed run's second event file starts at its checkpoint's frame: the accumulator drops the
    # first file's events from that frame on (the resumed run logs them again) and says "Detected out
    # of order event.step" on stderr, which is expected here.
    events = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.HISTOGRAMS: 0, event_accumulator.SCALARS: 0})
    events.Reload()
    gates = {}
    for tag in events.Tags().get("scalars", []):  # exact mean and fraction above 0.99, every log
        if tag.startswith("gates/"):
            series = events.Scalars(tag)
            step = max(1, len(series) // CURVE_POINTS)
            gates[tag.removeprefix("gates/")] = [[int(e.step), float(e.value)] for e in series[::step]]
    for tag in events.Tags().get("histograms", []):
        if not tag.startswith("gates/"):
            continue
        history = events.Histograms(tag)
        picks = sorted({round(i * (len(history) - 1) / (GATE_SNAPSHOTS - 1)) for i in range(GATE_SNAPSHOTS)})
        gates[tag.removeprefix("gates/")] = [
            {"frames": int(history[i].step), "limits": list(history[i].histogram_value.bucket_limit),
             "counts": list(history[i].histogram_value.bucket)} for i in picks]
    return gates


def checkpoint_frames(logdir: Path) -> int:
    latest = logdir / "checkpoints" / "latest.pt"
    if not latest.exists():
        return 0
    import torch

    return int(torch.load(latest, map_location="cpu", weights_only=True)["frames"])


class CellInterruptedError(Exception):
    """The cell's trainer stopped on a signal (it saved a checkpoint; the same command resumes)."""


#: Exit statuses of a trainer stopped by SIGINT or SIGTERM: 128 + the signal when it saved and exited
#: (train_agent.py), minus the signal when it died of it.
INTERRUPTED = (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM)


class Trainers:
    """One suite's running trainer processes. ``stop()`` sends each one SIGINT (it saves a checkpoint and
    exits), and every trainer started after it at once, so a signal that reaches the suite alone
    (``kill PID``, a scheduler's SIGTERM) stops the cells too instead of leaving them running."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopping = False

    def run(self, command: list[str], **kwargs) -> int:
        """``subprocess.run`` of one trainer that ``stop()`` can reach; its exit status."""
        with self._lock:
            proc = subprocess.Popen(command, **kwargs)
            self._running.add(proc)
            if self._stopping:
                proc.send_signal(signal.SIGINT)
        code = proc.wait()
        with self._lock:
            self._running.discard(proc)
        return code

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for proc in self._running:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)


def run_cell(cell: Cell, work: Path, results: Path, threads: int,
             trainers: Trainers) -> tuple[str, dict | None]:
    """Train one cell (resuming it if it was interrupted) and write its result; ``(status, record)``.
    The trainer runs under ``trainers``. Raises ``CellInterruptedError`` when it stopped on SIGINT or
    SIGTERM."""
    out = results / cell.key.with_suffix(".json")
    if out.exists():
        return "skipped", json.loads(out.read_text())
    logdir = work / cell.key
    resumed_from = checkpoint_frames(logdir)
    command = train_command(cell, logdir, threads)
    start = time.monotonic()
    log = logdir.parent / f"{logdir.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        code = trainers.run([sys.executable, *command], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if code in INTERRUPTED:
        raise CellInterruptedError
    if code != 0:
        return f"failed (exit {code}, see {log})", None
    curve, success = read_curve(logdir), read_curve(logdir, "charts/success_rate_100")
    scored = suite_stats.scored_curve({"curve": curve, "success_curve": success})
    spec = cell.spec
    task_from = task_start(logdir)
    record = {
        "suite": cell.suite, "task": cell.task, "core": cell.core, "seed": cell.seed,
        "command": "python " + " ".join(command), "machine": machine(),
        "config": yaml.safe_load((logdir / "config.yaml").read_text()),
        "total_frames": spec["total_frames"], "threshold": spec["threshold"], "curve": curve,
        "final_return": suite_stats.final_value(curve) if curve else None,  # None: never at the task
        "success_curve": success, "final_success": suite_stats.final_value(success) if success else None,
        "verdicts": bool(success or read_curve(logdir, "curriculum/success_rate_100")),
        "frames_to_threshold": suite_stats.frames_to_threshold(scored, spec["threshold"]),
        "auc": suite_stats.area_under_curve(scored, spec["total_frames"], task_from),
        "task_from": task_from,
        "wall_s": round(time.monotonic() - start, 1), "resumed_from": resumed_from,
        "gates": read_gates(logdir),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(out, lambda tmp: tmp.write_text(json.dumps(record)))
    return "done", record


#: Seconds between the suite's checks for a signal while cells run.
WAKE_S = 0.5


def final_words(record: dict) -> str:
    """A finished cell's ending for its status line: its final success rate where the task gives
    verdicts, else its final return (``final_return`` None: never at the task)."""
    if record["final_return"] is None:
        return " never left the curriculum's stages"
    if record.get("final_success") is not None:
        return f" final success {record['final_success']:.3f}"
    return f" final return {record['final_return']:.3f}"


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def _already_stopping(_signum, _frame):
    # A second Ctrl-C or SIGTERM while the cells save must not abandon them halfway (it raised out of
    # the shutdown below with a traceback, and the suite's exit status no longer said "interrupted").
    print("stopping: the running cells are saving their checkpoints", flush=True)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS reports one (a container or
    ``taskset`` can give fewer than ``os.cpu_count()``), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cell_threads(jobs: int, threads: int = 0, cpus: int | None = None) -> int:
    """Torch threads for each cell: ``threads`` where given (> 0), else the CPUs this process may
    use (``usable_cpus()``) shared among the ``jobs`` cells that run at once (at least 1)."""
    if threads > 0:
        return threads
    return max(1, (cpus or usable_cpus()) // max(1, jobs))


def run_suite(cells: list[Cell], work: Path, results: Path, jobs: int, progress_every_s: float = 300,
              threads: int = 0) -> int:
    """Run the cells, ``jobs`` at a time, each trainer with ``cell_threads(jobs, threads)`` torch
    threads. Ctrl-C or SIGTERM, to the suite or its process group (or a
    cell interrupted by a signal), lets the running cells save their checkpoints and starts no new
    one; the same command then resumes. Every ``progress_every_s`` seconds (0: never) each running
    cell's progress is printed (``cell_progress``)."""
    threads = cell_threads(jobs, threads)
    total, start = len(cells), time.monotonic()
    stopping = threading.Event()  # start no new cell
    trainers = Trainers()
    running: dict[int, Cell] = {}  # index -> cell, while it trains

    def one(index_cell) -> bool:
        index, cell = index_cell
        if stopping.is_set():
            return False
        running[index] = cell
        try:
            status, record = run_cell(cell, work, results, threads, trainers)
        except CellInterruptedError:
            stopping.set()
            status, record = "interrupted (checkpoint saved)", None
        finally:
            running.pop(index, None)
        final = "" if record is None else final_words(record)
        elapsed = time.monotonic() - start
        print(f"[{index + 1}/{total} {elapsed / 60:5.1f} min] {cell.task} {cell.core} seed {cell.seed}: "
              f"{status}{final}", flush=True)
        return record is not None

    pool = ThreadPoolExecutor(max_workers=jobs)
    # Installed explicitly: a suite started in the background of a script inherits SIGINT ignored.
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        futures = [pool.submit(one, index_cell) for index_cell in enumerate(cells)]
        # Wait in short slices: Python runs a signal's handler only in the main thread between
        # bytecodes, and an untimed wait on the cells can sleep through it until a cell ends.
        last_report = time.monotonic()
        while wait(futures, timeout=WAKE_S).not_done:
            if progress_every_s > 0 and time.monotonic() - last_report >= progress_every_s:
                last_report = time.monotonic()
                for index, cell in sorted(running.copy().items()):
                    where = cell_progress(work / cell.key, cell.spec["total_frames"])
                    print(f"[{index + 1}/{total} {(last_report - start) / 60:5.1f} min] {cell.task} "
                          f"{cell.core} seed {cell.seed}: running, {where}", flush=True)
        done = [future.result() for future in futures]
    except KeyboardInterrupt:
        for signum in previous:
            signal.signal(signum, _already_stopping)
        stopping.set()
        trainers.stop()  # a Ctrl-C already reached them; a signal to the suite alone did not
        pool.shutdown(wait=True, cancel_futures=True)  # the running cells save and exit
        print("interrupted: the same command resumes", flush=True)
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    pool.shutdown()
    if stopping.is_set():
        print("interrupted: the same command resumes", flush=True)
        return 130
    return 0 if all(done) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", help="a suite name from the suites file (quick, paper, ...)")
    parser.add_argument("--suites", type=Path, default=SUITES_FILE, help="suites YAML file")
    parser.add_argument("--tasks", default="", help="comma-separated subset of the suite's tasks")
    parser.add_argument("--cores", default="", help="comma-separated subset of the suite's cores")
    parser.add_argument("--seeds", default="", help="comma-separated subset of the suite's seeds")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per cell (default 0: the CPUs this process may use divided among "
                             "the jobs; give 1 when other runs share the machine)")
    parser.add_argument("--progress-every-s", type=float, default=300,
                        help="seconds between progress lines of the running cells (0: none)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "suites", help="run directories")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                        help="per-run result files")
    parser.add_argument("--all-cells", action="store_true",
                        help="run the cells the suite's not_run_here leaves unrun on the project's machine too")
    parser.add_argument("--report", action="store_true", help="write the report instead of running")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite, args.suites)
    tasks = [t for t in args.tasks.split(",") if t]
    cores = [c for c in args.cores.split(",") if c]
    if args.report:
        from benchmarks.suite_report import write_report

        command = "python benchmarks/memory_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(args.suite, suite, args.results, args.page, args.images, command)
        print(f"wrote {args.page} and images in {args.images}")
        return 0
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if args.jobs < 1 or args.threads < 0:
        parser.error(f"--jobs must be >= 1 and --threads >= 0, got --jobs {args.jobs} --threads {args.threads}")
    cells = cells_of(args.suite, suite, tasks, cores, seeds)
    declared = [c for c in cells if suite_stats.not_run_here(suite, c.task, c.core)]
    if declared and not args.all_cells:
        cells = [c for c in cells if not suite_stats.not_run_here(suite, c.task, c.core)]
        print(f"suite {args.suite}: skipping {len(declared)} cells its not_run_here leaves unrun on the "
              "project's machine (--all-cells runs them too)", flush=True)
    print(f"suite {args.suite}: {len(cells)} cells, {args.jobs} at a time; results in {args.results}",
          flush=True)
    return run_suite(cells, args.work, args.results, args.jobs, args.progress_every_s, args.threads)


if __name__ == "__main__":
    sys.exit(main())
