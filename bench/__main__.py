"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import logging

from bench import hub, models, posture, train

BENCHMARKS = {"posture": posture.main, "models": models.main, "train": train.main, "hub": hub.main}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name, run in BENCHMARKS.items():
        print(f"== {name} ==", flush=True)
        run()
    print("figures written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
