"""Farthest point sampling (FPS) on the CPU: airnets' compiled kernel against the alternatives, in one table.

What it measures, for (B, N, M) = (1, 3000, 500), (64, 3000, 500), (1, 30000, 2048) and (1, 100000, 8192)
(B clouds of N points uniform in [-0.5, 0.5]^3 from a fixed seed, M points sampled from each):

* ours: `airnets.fps.farthest_point_sample` (the C++ kernel of `airnets._C`) with torch's default thread count,
  and again with 1 thread, since every alternative below is single-threaded;
* the pure-torch loop `airnets.fps.fps_reference` (one op chain over all points per step): the executable
  statement of the semantics that ours implements;
* `fpsample` (PyPI), exact `fpsample.fps_sampling(pts, M, start_idx=0)` and the bucket / kd-tree variant
  `fpsample.bucket_fps_kdline_sampling(pts, M, h, start_idx=0)`; fpsample takes one [N, 3] float32 numpy cloud
  at a time, so a batch is a Python loop over its clouds.

Every time is the median of several runs after a warm-up run (the warm-up's indices are the ones checked); a
method whose first run takes more than `SLOW_S` seconds is run once, all methods having been warmed up on a
tiny cloud first. Ours is given in ms; every other method as "x slower / faster than ours" and in ms.

The "identical" columns say whether a method's indices equal, position by position, those of `fps_reference`
with skip_near_origin=False (fpsample has no near-origin rule): first pick index 0, running minimum of float32
squared distances (dx*dx + dy*dy) + dz*dz, the pointnet2_ops tie rule. The reference's own run is the one
compared with, not a second one. With --quick the torch loop is skipped for the largest case, and that row is
compared with ours instead (marked †).

Run it with `make bench` (which also installs fpsample into the venv when it is missing), or directly:

    python bench/fps.py [--quick] [--repeats N] [--out table.md]

Without fpsample the script still runs, and its columns read "not installed".

    python bench/fps.py --under_load

times ours for one cloud at a time (B = 1, what reconstruction does) with torch's default thread count and with one
thread while two busy processes keep both cores loaded, and prints the ratio: a kernel that opens a parallel region
for work it cannot split waits for a scheduler time slice on every call when the cores are busy.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout with the in-place build, installed or not
from airnets.fps import farthest_point_sample, fps_reference  # noqa: E402
from report import cpu_model, emit, render_table, usable_cores, warn_if_busy  # noqa: E402

try:
    import fpsample
except ImportError:
    fpsample = None

CASES = [(1, 3000, 500), (64, 3000, 500), (1, 30000, 2048), (1, 100000, 8192)]
SEED = 0
SLOW_S = 2.0    # a method whose first run takes this long is not run again
BUDGET_S = 4.0  # the timed repeats of one method stop growing past this much time (3 runs at least)
NOT_INSTALLED = "not installed"


def kdline_height(n: int) -> int:
    """The kd-tree height h for `bucket_fps_kdline_sampling` (buckets of 2**h points): fpsample's docstring says
    h=3 for small workloads and 5 or 7 for medium ones; we call N <= 10k small and N <= 50k medium (h=5), above it 7."""
    h = 3 if n <= 10_000 else 5 if n <= 50_000 else 7
    while h > 1 and 2**h > n:  # fpsample requires 2**h <= N
        h -= 1
    return h


# ----------------------------------------------------------------------------------------------------------- methods
@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with torch (and so airnets._C's at::parallel_for) limited to n threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ours(xyz: torch.Tensor, m: int) -> np.ndarray:
    return farthest_point_sample(xyz, m, skip_near_origin=False).numpy()


def ours_1_thread(xyz: torch.Tensor, m: int) -> np.ndarray:
    with torch_threads(1):
        return ours(xyz, m)


def torch_loop(xyz: torch.Tensor, m: int) -> np.ndarray:
    return fps_reference(xyz, m, skip_near_origin=False).numpy()


def fpsample_exact(clouds: list[np.ndarray], m: int) -> np.ndarray:
    return np.stack([fpsample.fps_sampling(c, m, start_idx=0) for c in clouds]).astype(np.int64)


def fpsample_kdline(clouds: list[np.ndarray], m: int) -> np.ndarray:
    h = kdline_height(clouds[0].shape[0])
    return np.stack([fpsample.bucket_fps_kdline_sampling(c, m, h=h, start_idx=0) for c in clouds]).astype(np.int64)


def ours_from_first_picks(xyz: torch.Tensor, m: int, first: np.ndarray) -> np.ndarray:
    """Ours, started at point first[b] of cloud b instead of point 0: the cloud is rolled so that point comes first
    and the indices rolled back. (The tie rule then follows the rolled order; exact ties are rare in these clouds.)"""
    n = xyz.shape[1]
    out = [(ours(torch.roll(xyz[b : b + 1], -int(s), dims=1), m) + int(s)) % n for b, s in enumerate(first)]
    return np.concatenate(out)


# ------------------------------------------------------------------------------------------------------------ timing
class Timing:
    def __init__(self, seconds: float, runs: int, result: np.ndarray):
        self.seconds, self.runs, self.result = seconds, runs, result

    @property
    def ms(self) -> float:
        return 1e3 * self.seconds


def measure(fn, repeats: int) -> Timing:
    """Median wall time of fn() over up to `repeats` runs after one warm-up run, whose result is returned with it.
    A first run slower than SLOW_S is the only run; otherwise the repeats are capped by BUDGET_S (3 at least)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    if first >= SLOW_S:
        return Timing(first, 1, result)
    runs = max(3, min(repeats, int(BUDGET_S / max(first, 1e-9))))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), runs, result)


def warm_up() -> None:
    """One call of every method on a tiny cloud: library loading, thread pools and first-call costs happen here."""
    xyz = torch.rand(2, 512, 3, generator=torch.Generator().manual_seed(SEED)) - 0.5
    clouds = [c.numpy() for c in xyz]
    ours(xyz, 32), ours_1_thread(xyz, 32), torch_loop(xyz, 32)
    if fpsample is not None:
        for fn in (fpsample_exact, fpsample_kdline):
            try:
                fn(clouds, 32)
            except Exception:  # reported with the case that fails, in run_case
                pass


# ------------------------------------------------------------------------------------------------------- formatting
def fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_ratio(t: Timing, base: Timing, extra: str = "") -> str:
    """A time as a ratio to ours and in ms: "12.3x slower (45.6 ms)"."""
    r = t.seconds / base.seconds
    word, r = ("slower", r) if r >= 1 else ("faster", 1 / r)
    num = f"{r:,.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"
    runs = f", {t.runs} run" if t.runs == 1 else ""
    return f"{num}x {word} ({fmt_ms(t.ms)} ms{extra}{runs})"


def fmt_identical(got: np.ndarray, want: np.ndarray, mark: str = "") -> str:
    differ = int((got != want).sum())
    return f"yes{mark}" if differ == 0 else f"no ({differ}/{want.size} differ){mark}"


def fmt_case(b: int, n: int, m: int) -> str:
    return f"{b} x {n:,} -> {m:,}"


def error_cell(e: Exception) -> str:
    return f"error ({type(e).__name__})"




# ------------------------------------------------------------------------------------------------------- the bench
def run_case(b: int, n: int, m: int, repeats: int, skip_reference: bool) -> list[str]:
    """Measure every method on one (B, N, M) case; returns the table row."""
    log = lambda what: print(f"  {fmt_case(b, n, m)}: {what}", file=sys.stderr, flush=True)  # noqa: E731
    xyz = torch.rand(b, n, 3, generator=torch.Generator().manual_seed(SEED)) - 0.5
    clouds = [c.numpy() for c in xyz]  # views of xyz, one [N, 3] float32 array per cloud, made before timing

    log("ours")
    t_ours = measure(lambda: ours(xyz, m), repeats)
    log("ours, 1 thread")
    t_one = measure(lambda: ours_1_thread(xyz, m), repeats)
    if skip_reference:
        t_ref, want, mark = None, t_ours.result, " †"
    else:
        log("torch loop (fps_reference)")
        t_ref = measure(lambda: torch_loop(xyz, m), repeats)
        want, mark = t_ref.result, ""

    ours_identical = "n/a: reference skipped" if t_ref is None else fmt_identical(t_ours.result, want)
    row = [fmt_case(b, n, m), fmt_ms(t_ours.ms), ours_identical]
    row += [fmt_ratio(t_one, t_ours), fmt_identical(t_one.result, want, mark)]
    row += ["skipped (--quick)" if t_ref is None else fmt_ratio(t_ref, t_ours)]

    if fpsample is None:
        return row + [NOT_INSTALLED] * 5
    log("fpsample.fps_sampling")
    try:
        t = measure(lambda: fpsample_exact(clouds, m), repeats)
        row += [fmt_ratio(t, t_ours), fmt_identical(t.result, want, mark)]
    except Exception as e:
        log(f"fpsample.fps_sampling failed: {e!r}")
        row += [error_cell(e)] * 2
    log("fpsample.bucket_fps_kdline_sampling")
    try:
        t = measure(lambda: fpsample_kdline(clouds, m), repeats)
        row += [fmt_ratio(t, t_ours, f", h={kdline_height(n)}"), fmt_identical(t.result, want, mark)]
        # the same comparison with ours started where the kdline run started (its first pick, whatever start_idx said)
        row += [fmt_identical(t.result, ours_from_first_picks(xyz, m, t.result[:, 0]))]
    except Exception as e:
        log(f"fpsample.bucket_fps_kdline_sampling failed: {e!r}")
        row += [error_cell(e)] * 3
    return row








def machine_info(load: float | None) -> list[str]:
    fps_version = importlib.metadata.version("fpsample") if fpsample is not None else NOT_INSTALLED
    load_text = "" if load is None else f"; load average {load:.2f} at the start"
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores ({usable_cores()} usable); "
        f"{platform.system()} {platform.release()}{load_text}",
        f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"fpsample {fps_version}",
        f"ours runs with torch's default thread count: {torch.get_num_threads()} threads "
        "(and with 1 thread in its own column)",
    ]




LOAD_CASES = [(1, 3000, 500), (1, 30000, 300), (1, 30000, 3000)]

def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end: pass

def under_load_table(repeats: int) -> str:
    "ours with the default thread count and with one thread, B = 1, while two processes keep the cores busy"
    import multiprocessing as mp
    busy = [mp.get_context('spawn').Process(target=_spin, args=(600,), daemon=True) for _ in range(2)]
    for p in busy: p.start()
    try:
        time.sleep(1.0)
        lines = ['| B x N -> M | ours, default threads (ms) | ours, 1 thread (ms) | default / 1 thread |', '|---|---|---|---|']
        for b, n, m in LOAD_CASES:
            xyz = torch.rand(b, n, 3, generator=torch.Generator().manual_seed(SEED)) - 0.5
            t_def = measure(lambda: ours(xyz, m), repeats)
            t_one = measure(lambda: ours_1_thread(xyz, m), repeats)
            lines.append(f'| {fmt_case(b, n, m)} | {t_def.ms:.2f} | {t_one.ms:.2f} | {t_def.ms / t_one.ms:.2f} |')
    finally:
        for p in busy: p.terminate()
    return '\n'.join([f'Under load: two busy processes on {os.cpu_count()} CPUs, torch default threads {torch.get_num_threads()}; median of {repeats} runs.', ''] + lines)

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="skip the torch loop for the largest case (it takes tens of seconds)")
    ap.add_argument("--repeats", type=int, default=7,
                    help="timed runs per method at most, after the warm-up (default 7)")
    ap.add_argument("--out", type=Path, help="also write the table as markdown to this file")
    ap.add_argument("--under_load", action="store_true", help="only the table of one cloud at a time under a background load")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.under_load:
        print(under_load_table(args.repeats)); return 0

    load = warn_if_busy("the times, the multi-threaded ones most")
    start = time.perf_counter()
    print("warming up ...", file=sys.stderr, flush=True)
    warm_up()
    largest = max(CASES, key=lambda c: c[0] * c[1] * c[2])
    rows = [run_case(b, n, m, args.repeats, args.quick and (b, n, m) == largest) for b, n, m in CASES]
    wall = time.perf_counter() - start

    threads = torch.get_num_threads()
    header = [
        "B x N -> M", f"ours, {threads} threads (ms)", "ours identical",
        "ours, 1 thread", "ours 1 thread identical",
        "torch loop fps_reference",
        "fpsample fps_sampling (exact)", "fps_sampling identical",
        "fpsample bucket_fps_kdline", "kdline identical", "kdline = ours from kdline's 1st pick",
    ]
    notes = [
        "Times: median of several runs after a warm-up (\"1 run\": too slow to repeat). Ratios are a method's time "
        "divided by ours at the default thread count; fpsample loops over the B clouds in Python.",
        "identical: the same indices at every position as fps_reference(xyz, M, skip_near_origin=False), the reference "
        "semantics (start at index 0, float32 squared distances, pointnet2_ops tie rule); \"k/B*M differ\" otherwise.",
    ]
    if fpsample is None:
        notes.append("fpsample is not installed: `pip install fpsample` (tools/bench.sh does) to compare with it.")
    else:
        heights = ", ".join(f"N={n:,}: h={kdline_height(n)}" for n in sorted({c[1] for c in CASES}))
        notes.append(
            f"kdline: bucket_fps_kdline_sampling(pts, M, h, start_idx=0), h by N as fpsample's docstring suggests "
            f"(3 small, 5 or 7 medium): {heights}. "
            "Its last column compares it with ours started at the point the kdline run actually started from "
            "(fpsample applies start_idx after its kd-tree build has reordered the points, so its first pick "
            "is not point 0)."
        )
    if args.quick:
        notes.append("† --quick: fps_reference was not run for the largest case; that row is compared with ours.")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        f"# Farthest point sampling on the CPU ({date})", "",
        *[f"- {line}" for line in machine_info(load)], "",
        render_table(header, rows), "",
        *[f"- {line}" for line in notes],
        f"- Whole benchmark: {wall:.1f} s wall time.", "",
    ])
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
