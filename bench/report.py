"""What every bench/ script prints around its measurements: the machine it ran on, markdown tables, and the output.

Imported by bench/fps.py, bench/prep.py and bench/model.py (run as scripts, so this folder is on sys.path).
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path

from airnets.files import write_atomic


def cpu_model() -> str:
    "The CPU's model name (/proc/cpuinfo), or what platform knows"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    "Cores this process may run on"
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> float | None:
    "The 1-minute load average, where the system has one"
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return None


def warn_if_busy(what: str = "the times") -> float | None:
    "Print a warning when other work is running (it distorts timings); return the load average"
    load = load_average()
    if load is not None and load > 0.5 * usable_cores():
        print(f"warning: load average {load:.2f} on {usable_cores()} cores: other work will distort {what}",
              file=sys.stderr)
    return load


def render_table(header: list, rows: list[list]) -> str:
    "A markdown pipe table, its columns padded so it also reads well as plain text"
    header, rows = [str(c) for c in header], [[str(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, width)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in width) + "|", *map(line, rows)])


def emit(text: str, out: Path | None) -> None:
    "Print the report, and write it to `out` (atomically) when given"
    print(text, end="")
    if out is not None:
        write_atomic(out, text)
        print(f"table written to {out}", file=sys.stderr)
