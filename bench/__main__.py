"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import logging

from bench import models, posture

BENCHMARKS = {"posture": posture.main, "models": models.main}
BENCHMARKS["train"] = __import__("bench.train", fromlist=["main"]).main


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name, run in BENCHMARKS.items():
        print(f"== {name} ==", flush=True)
        run()
    print("figures written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
