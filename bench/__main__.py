"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import logging

from bench import posture

BENCHMARKS = {"posture": posture.main}


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name, run in BENCHMARKS.items():
        print(f"== {name} ==", flush=True)
        run()
    print("figures written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
