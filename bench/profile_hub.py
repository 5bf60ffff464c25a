"""Run the `hub` command under cProfile; the stats are written when it exits (SIGINT/SIGTERM).

    python bench/profile_hub.py hub.prof serve --port 8080
    python bench/profile_hub.py --show hub.prof

cProfile sees the event-loop thread only: time the aiosqlite worker thread spends inside SQLite
shows up as waiting in the selector. `--show` prints the top functions by own time and the hub's
own functions by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys

HUB_CODE = ("/hub/", "/channels/")


def profile(out: str, hub_args: list[str]) -> int:
    from hub.cli import main

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return int(main(hub_args))
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def report(path: str, top: int = 25) -> str:
    """The top functions by own time, then the hub's functions by cumulative time."""
    buffer = io.StringIO()
    stats = pstats.Stats(path, stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    hub_only = pstats.Stats(path, stream=buffer)
    hub_only.sort_stats("cumulative").print_stats("|".join(HUB_CODE), top)
    return buffer.getvalue()


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--show":
        print(report(sys.argv[2]))
        return 0
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    return profile(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
