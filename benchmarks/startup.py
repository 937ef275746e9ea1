"""How long a data-prep job takes to import what it needs, against importing TensorFlow/Keras.

    python benchmarks/startup.py [--repeat 3]

Prints the best of N cold interpreter starts for each and the ratio (measured in one run, since
these machines are noisy). Goal: a prep job starts in well under 2 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

PREP = "import dfdetect.data.ingest, dfdetect.data.demo, dfdetect.config, dfdetect.logutil, pandas, pyarrow.parquet"
KERAS = "import keras, tensorflow"


def best_seconds(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    empty = best_seconds("pass", args.repeat)
    prep = best_seconds(PREP, args.repeat)
    keras = best_seconds(KERAS, args.repeat)
    print(f"bare interpreter : {empty:.2f} s")
    print(f"prep job imports : {prep:.2f} s")
    print(f"keras+tensorflow : {keras:.2f} s")
    print(f"ratio keras/prep : {keras / prep:.1f}x")


if __name__ == "__main__":
    main()
