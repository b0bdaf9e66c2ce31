"""`mesoslite up` start-up: time to ready (health 200 and the agent registered), idle
RSS, and the size of the frozen binary. Targets: ready <= 1.5 s, RSS <= 64 MB,
binary <= 40 MB.

    python -m bench.bench_startup [--trials N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.cluster import ROOT, mesoslite_command, start, tree_rss_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    command = mesoslite_command()
    print(f"command: {' '.join(command)}")
    binary = ROOT / "dist" / "mesoslite"
    if binary.exists():
        print(f"binary size: {binary.stat().st_size / 1e6:.1f} MB")
    ready, rss = [], []
    for _ in range(args.trials):
        cluster = start()
        try:
            ready.append(cluster.ready_s)
            time.sleep(2.0)  # let it settle to its idle state
            rss.append(tree_rss_bytes(cluster.process.pid) / 1e6)
        finally:
            cluster.stop()
    print(
        f"ready: median {statistics.median(ready):.3f} s, min {min(ready):.3f} s, "
        f"max {max(ready):.3f} s over {len(ready)} trials"
    )
    print(f"idle RSS (process tree): median {statistics.median(rss):.1f} MB, max {max(rss):.1f} MB")


if __name__ == "__main__":
    main()
