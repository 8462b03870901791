#!/usr/bin/env python3
"""Benchmark harness: proc against CPython and a C or shell baseline.

    cargo bench --bench compare [-- OPTIONS]     # builds proc, then runs this
    python3 benches/run.py [--build] [OPTIONS]   # uses target/release/proc

Every workload is a set of files in benches/workloads/: NAME.proc, NAME.py and
where there is one a baseline NAME.c (compiled here with `cc -O2`), NAME.sh or
another .py. Each round runs python, the baseline and proc one after the
other, so that a change in the machine's load hits all three alike; the table
shows the median over the rounds.

Each program prints `checksum ...`, which must match the Python program's, and
the IPC workloads print `elapsed SECONDS` for the section they time themselves
(so interpreter start-up and `import multiprocessing` are left out). The other
workloads are timed by their whole process's wall time. The peak RSS of a
process tree comes from wait4(2) (Linux gives the largest of the process and
every descendant it waited for).

A proc workload that fails, hangs, prints a wrong checksum or finds no binary
is marked in the table and the run goes on. The exit status is 0 unless the
harness itself is used wrongly.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS_DIR = os.path.join(ROOT, "benches", "workloads")

IMPLS = ("python", "baseline", "proc")  # the order within one round


# --- targets -----------------------------------------------------------------


class Target:
    """A goal for one row: a bound on proc/python, proc/baseline or proc itself."""

    def __init__(self, text, against, bound):
        self.text = text
        self.against = against  # "python", "baseline" or "abs"
        self.bound = bound

    def met(self, proc, python, baseline):
        ref = {"python": python, "baseline": baseline, "abs": 1.0}[self.against]
        if proc is None or ref is None or ref <= 0:
            return None
        return proc / ref <= self.bound


def as_fast_as_python():
    return Target("<= 1.0x py", "python", 1.0)


def times_faster_than_python(k):
    return Target(f"{k:g}x faster than py", "python", 1.0 / k)


def at_most_times_baseline(k, name):
    return Target(f"<= {k:g}x {name}", "baseline", k)


def at_most(value, unit):
    return Target(f"<= {value:g} {unit}", "abs", value)


# --- workloads ---------------------------------------------------------------


class Row:
    """One line of the table, computed from the samples of one workload.

    `metric` picks the raw number from a run: "wall" (seconds), "elapsed"
    (seconds, printed by the program), "maxrss" (KiB, from wait4) or
    "line:KEY" (a number the program printed after KEY). The raw number is
    multiplied by `scale` to give `unit`.
    """

    def __init__(self, name, metric, unit, scale, targets):
        self.name = name
        self.metric = metric
        self.unit = unit
        self.scale = scale
        self.targets = targets


class Workload:
    def __init__(self, name, rows, baseline=None, repeat=1, proc_argv=None,
                 python_argv=None, pin=False, files=None):
        self.name = name
        self.rows = rows
        self.baseline = baseline  # None, "c", "sh" or "py:FILE"
        self.repeat = repeat  # starts per sample (startup)
        self.proc_argv = proc_argv  # None: [proc, NAME.proc]
        self.python_argv = python_argv  # None: [python3, -P, NAME.py]
        self.pin = pin  # run all three under `taskset -c 0`
        self.files = files or name  # the stem of the workload's files

    @property
    def baseline_label(self):
        if self.baseline is None:
            return "-"
        if self.baseline.startswith("py:"):
            return os.path.splitext(self.baseline[3:])[0].split("_")[-1]
        return {"c": "C", "sh": "sh"}[self.baseline]


MS = 1e3
US = 1e6
MIB = 1 / 1024


def per_op_us(n):
    return US / n


WORKLOADS = [
    Workload("fib", [Row("fib", "wall", "ms", MS, [as_fast_as_python()])]),
    Workload("loop", [Row("loop", "wall", "ms", MS, [as_fast_as_python()])]),
    Workload("collections",
             [Row("collections", "wall", "ms", MS, [as_fast_as_python()])]),
    Workload("interpolation",
             [Row("interpolation", "wall", "ms", MS, [as_fast_as_python()])]),
    Workload("startup",
             [Row("startup", "wall", "ms/start", MS, [at_most(3, "ms")])],
             baseline="c", repeat=50,
             proc_argv=["-c", ""], python_argv=["-c", ""]),
    Workload("spawn_join",
             [Row("spawn_join", "elapsed", "us/child", per_op_us(300),
                  [times_faster_than_python(10), at_most_times_baseline(1.5, "C")]),
              Row("spawn_join_rss", "line:child_rss_kb", "MiB/child", MIB,
                  [Target("<= 1/3 py", "python", 1 / 3)])],
             baseline="c"),
    Workload("queue",
             [Row("queue", "elapsed", "us/item", per_op_us(200_000),
                  [times_faster_than_python(10)])],
             baseline="c"),
    Workload("pipe_pingpong",
             [Row("pipe_pingpong", "elapsed", "us/trip", per_op_us(20_000),
                  [at_most_times_baseline(1.11, "C")])],
             baseline="c"),
    Workload("pipe_pingpong_pinned",
             [Row("pipe_pingpong_pinned", "elapsed", "us/trip", per_op_us(20_000),
                  [at_most_times_baseline(1.11, "C")])],
             baseline="c", pin=True, files="pipe_pingpong"),
    Workload("counter",
             [Row("counter", "elapsed", "us/incr", per_op_us(40_000),
                  [times_faster_than_python(5)])],
             baseline="c"),
    Workload("pool_map",
             [Row("pool_map", "elapsed", "ms", MS, [times_faster_than_python(3)])],
             baseline="py:pool_map_executor.py"),
    Workload("apply_async",
             [Row("apply_async", "elapsed", "us/task", per_op_us(10_000),
                  [times_faster_than_python(5)])]),
    Workload("pool_rss",
             [Row("pool_rss", "maxrss", "MiB max", MIB, [at_most(3, "MiB")])]),
    Workload("run_true",
             [Row("run_true", "elapsed", "us/run", per_op_us(2000),
                  [at_most_times_baseline(1.05, "C")])],
             baseline="c"),
    Workload("pipeline_1g",
             [Row("pipeline_1g", "wall", "ms", MS,
                  [at_most_times_baseline(round(1 / 0.97, 3), "sh")])],
             baseline="sh"),
]


# --- running one program -----------------------------------------------------


class Run:
    def __init__(self, wall, rc, stdout, stderr, maxrss_kb, timed_out, leftovers):
        self.wall = wall
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.maxrss_kb = maxrss_kb
        self.timed_out = timed_out
        self.leftovers = leftovers
        self.values = {}
        for line in stdout.splitlines():
            key, _, rest = line.strip().partition(" ")
            if key and key not in self.values:
                self.values[key] = rest.strip()


def spawn_and_wait(argv, timeout):
    """Run argv with stdout/stderr in temp files, in its own session.

    Returns a Run. On timeout the whole process group is killed (by a SIGALRM
    handler: wait4 is retried after it, and no thread start is timed). wait4
    gives the peak RSS of the tree; anything of the group still alive after
    the main process ends is killed and reported.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ]
        timed_out = []

        def on_alarm(signum, frame):
            timed_out.append(True)
            _killpg(pid)

        old = signal.signal(signal.SIGALRM, on_alarm)
        t0 = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                              setsid=True)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            _, status, rusage = os.wait4(pid, 0)
            wall = time.perf_counter() - t0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        leftovers = _group_alive(pid)
        if leftovers:
            _killpg(pid)
        out.seek(0)
        err.seek(0)
        return Run(wall, os.waitstatus_to_exitcode(status),
                   out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"),
                   rusage.ru_maxrss, bool(timed_out), leftovers)


def _killpg(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid):
    # The group outlives its leader only while some member runs (or is a zombie
    # nobody reaped); the kernel never reuses a pid that is still a group id.
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


# --- the harness -------------------------------------------------------------


class Failure(Exception):
    """A run that gives no number; `label` is what the table shows instead."""

    def __init__(self, message, label="FAILED"):
        super().__init__(message)
        self.label = label


class Harness:
    def __init__(self, args):
        self.args = args
        self.proc = args.proc
        self.python = args.python
        self.build_dir = args.build_dir
        self.errors = []  # (workload, impl, message)

    def argv_for(self, w, impl):
        stem = os.path.join(WORKLOADS_DIR, w.files)
        if impl == "proc":
            argv = [self.proc] + (w.proc_argv if w.proc_argv is not None
                                  else [stem + ".proc"])
        elif impl == "python":
            # -P: keep benches/workloads off sys.path, or queue.py would shadow
            # the standard library's queue module.
            argv = [self.python] + (w.python_argv if w.python_argv is not None
                                    else ["-P", stem + ".py"])
        elif w.baseline == "c":
            argv = [os.path.join(self.build_dir, w.files)]
        elif w.baseline == "sh":
            argv = ["sh", stem + ".sh"]
        else:
            argv = [self.python, "-P", os.path.join(WORKLOADS_DIR, w.baseline[3:])]
        if w.pin:
            argv = ["taskset", "-c", "0"] + argv
        return argv

    def compile_c(self, workloads):
        """Compile the C baselines; returns {files: error} for those that failed."""
        failed = {}
        os.makedirs(self.build_dir, exist_ok=True)
        for w in workloads:
            if w.baseline != "c":
                continue
            src = os.path.join(WORKLOADS_DIR, w.files + ".c")
            exe = os.path.join(self.build_dir, w.files)
            cmd = [self.args.cc, "-O2", "-pthread", "-o", exe, src]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    failed[w.files] = f"`{' '.join(cmd)}` failed:\n{r.stderr}"
            except OSError as e:
                failed[w.files] = f"cannot run {self.args.cc}: {e}"
        return failed

    def sample(self, w, impl, expected, timeout):
        """One sample: `repeat` runs of the program. Raises Failure."""
        argv = self.argv_for(w, impl)
        runs = []
        for _ in range(w.repeat):
            try:
                r = spawn_and_wait(argv, timeout)
            except OSError as e:
                raise Failure(f"cannot start {argv[0]}: {e}", "NO EXEC")
            if r.timed_out:
                raise Failure(f"timed out after {timeout:.0f} s (process group killed)"
                              + _tail("stderr", r.stderr), "TIMEOUT")
            if r.rc != 0:
                raise Failure(f"exit status {r.rc}" + _tail("stderr", r.stderr)
                              + _tail("stdout", r.stdout))
            if r.leftovers:
                self.errors.append((w.name, impl, "left processes running in its "
                                    "process group after it exited (killed)"))
            runs.append(r)
        r = runs[0]
        if w.repeat > 1:
            r.wall = sum(x.wall for x in runs) / len(runs)
            r.maxrss_kb = max(x.maxrss_kb for x in runs)
        if w.repeat == 1:
            got = r.values.get("checksum")
            if got is None:
                raise Failure("printed no `checksum` line" + _tail("stdout", r.stdout))
            if expected is not None and got != expected:
                raise Failure(f"wrong checksum: got `{got}`, expected `{expected}`",
                              "WRONG")
        return r

    def value(self, row, run):
        if row.metric == "wall":
            raw = run.wall
        elif row.metric == "maxrss":
            raw = run.maxrss_kb
        else:
            key = row.metric[5:] if row.metric.startswith("line:") else row.metric
            text = run.values.get(key)
            if text is None:
                raise Failure(f"printed no `{key}` line")
            try:
                raw = float(text.split()[0])
            except (ValueError, IndexError):
                raise Failure(f"`{key}` is not a number: `{text}`")
        return raw * row.scale

    def run_workload(self, w, rounds, c_failed):
        impls = [i for i in IMPLS if i != "baseline" or w.baseline is not None]
        broken = {}  # impl -> Failure; a broken impl is not run again
        if "proc" in impls and self.proc_missing:
            broken["proc"] = Failure(self.proc_missing, "no binary")
        if w.baseline == "c" and w.files in c_failed:
            broken["baseline"] = Failure(c_failed[w.files], "NO BUILD")
        if w.pin and not shutil.which("taskset"):
            broken = {i: Failure("taskset not found", "no taskset") for i in impls}
        samples = {i: {row.name: [] for row in w.rows} for i in impls}
        expected = None
        timeout = self.args.timeout
        for rnd in range(rounds):
            for impl in impls:
                if impl in broken:
                    continue
                _progress(f"{w.name}: round {rnd + 1}/{rounds} {impl}")
                try:
                    r = self.sample(w, impl, expected if impl != "python" else None,
                                    timeout)
                    vals = {row.name: self.value(row, r) for row in w.rows}
                except Failure as e:
                    broken[impl] = e
                    continue
                if impl == "python":
                    expected = r.values.get("checksum")
                    # A hung proc costs at most 20x Python's time (10 s minimum).
                    timeout = min(self.args.timeout, max(10.0, 20 * r.wall))
                for name, v in vals.items():
                    samples[impl][name].append(v)
                if self.args.verbose:
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in vals.items())
                    _progress(f"    {impl}: {shown}", end="\n")
        for impl, e in broken.items():
            if not (impl == "proc" and self.proc_missing):  # said once, up front
                self.errors.append((w.name, impl, str(e)))
        results = []
        for row in w.rows:
            med = {}
            for impl in ("proc", "python", "baseline"):
                xs = samples.get(impl, {}).get(row.name, [])
                med[impl] = statistics.median(xs) if xs and impl not in broken else None
            status = {impl: e.label for impl, e in broken.items()}
            results.append((w, row, med, status))
        return results

    def main(self, workloads, rounds):
        self.proc_missing = None
        if not (os.path.isfile(self.proc) and os.access(self.proc, os.X_OK)):
            self.proc_missing = (f"no proc binary at {self.proc} "
                                 "(build it: cargo build --release, or pass --proc PATH)")
            print(f"warning: {self.proc_missing}; timing python and the baselines only",
                  file=sys.stderr)
        c_failed = self.compile_c(workloads)
        results = []
        t0 = time.monotonic()
        for w in workloads:
            results.extend(self.run_workload(w, rounds, c_failed))
        _progress("", end="")
        print(f"proc benchmarks: {rounds} round(s), median shown; proc = {self.proc}")
        print(f"machine: {os.cpu_count()} cpu(s), {_cpu_model()}, "
              f"{_python_version(self.python)}; took {time.monotonic() - t0:.0f} s\n")
        print(render(results, markdown=self.args.markdown))
        if self.errors:
            print("\nproblems:")
            for name, impl, msg in self.errors:
                print(f"- {name} [{impl}]: {_indent(msg)}")
        return 0


def _tail(what, text, lines=8):
    text = text.rstrip()
    if not text:
        return ""
    tail = "\n".join(text.splitlines()[-lines:])
    return f"; {what}:\n{tail}"


def _indent(msg):
    return msg.replace("\n", "\n    ")


def _progress(msg, end=""):
    if sys.stderr.isatty():
        print(f"\r\033[K{msg}", end=end, file=sys.stderr, flush=True)
    elif msg and end == "\n":
        print(msg, file=sys.stderr, flush=True)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown cpu"


def _python_version(python):
    try:
        r = subprocess.run([python, "--version"], capture_output=True, text=True)
        return (r.stdout or r.stderr).strip()
    except OSError:
        return "python: not found"


# --- the table ---------------------------------------------------------------


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def render(results, markdown=False):
    head = ["workload", "unit", "proc", "python", "baseline", "proc/py",
            "proc/base", "target", "met"]
    rows = []
    for w, row, med, status in results:
        cells = {}
        for impl in ("proc", "python", "baseline"):
            if impl == "baseline" and w.baseline is None:
                cells[impl] = "-"
            elif med[impl] is not None:
                cells[impl] = fmt(med[impl])
            else:
                cells[impl] = status.get(impl, "-")
        if w.baseline is not None and cells["baseline"] not in ("-",):
            cells["baseline"] += f" ({w.baseline_label})"
        p, py, b = med["proc"], med["python"], med["baseline"]
        ratio_py = fmt(p / py) if p is not None and py else "-"
        ratio_b = fmt(p / b) if p is not None and b else "-"
        verdicts = []
        for t in row.targets:
            ok = t.met(p, py, b)
            verdicts.append("?" if ok is None else ("yes" if ok else "NO"))
        rows.append([row.name, row.unit, cells["proc"], cells["python"],
                     cells["baseline"], ratio_py, ratio_b,
                     "; ".join(t.text for t in row.targets), "/".join(verdicts)])
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    right = {2, 3, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(wd) if i in right else c.ljust(wd)
                         for i, (c, wd) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * wd for wd in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


# --- command line ------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Time proc against CPython and C/shell baselines.",
        epilog="Workloads: " + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--proc", default=os.path.join(ROOT, "target", "release", "proc"),
                    help="the proc binary (default: target/release/proc)")
    ap.add_argument("--build", action="store_true",
                    help="run `cargo build --release` first")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only this workload (repeatable, or comma-separated)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of python/baseline/proc; the median is shown (default 5)")
    ap.add_argument("--quick", action="store_true",
                    help="one round, 10 starts for startup: a smoke test, not a measurement")
    # sys.executable, not "python3": that may be a pyenv shim, a shell script
    # that would add tens of ms to every Python start.
    ap.add_argument("--python", default=sys.executable,
                    help="the CPython to compare with (default: the one running this)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="the C compiler")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "target", "bench-c"),
                    help="where the C baselines are compiled (default: target/bench-c)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds before one run is killed (default 60, and at most "
                         "20x the Python run's time once that is known)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:22} {', '.join(r.unit for r in w.rows):20} "
                  f"baseline: {w.baseline_label}")
        return 0
    workloads = WORKLOADS
    if args.only:
        names = [n for arg in args.only for n in arg.split(",") if n]
        known = {w.name for w in WORKLOADS}
        unknown = [n for n in names if n not in known]
        if unknown:
            print(f"error: unknown workload(s): {', '.join(unknown)}; "
                  f"known: {', '.join(sorted(known))}", file=sys.stderr)
            return 2
        workloads = [w for w in WORKLOADS if w.name in names]
    rounds = args.rounds
    if args.quick:
        rounds = 1
        workloads = [_quick(w) for w in workloads]
    if args.build:
        r = subprocess.run(["cargo", "build", "--release"], cwd=ROOT)
        if r.returncode != 0:
            print("warning: cargo build --release failed; going on with what exists",
                  file=sys.stderr)
    args.proc = os.path.abspath(args.proc)
    args.build_dir = os.path.abspath(args.build_dir)
    return Harness(args).main(workloads, rounds)


def _quick(w):
    if w.repeat > 1:
        w.repeat = 10
    return w


if __name__ == "__main__":
    sys.exit(main())
