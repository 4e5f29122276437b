"""seqrec: sequence-aware (next-item) recommendation."""

import os
from importlib.metadata import PackageNotFoundError, version

# PyTorch's OpenMP threads spin for about 300,000 rounds before they sleep: on a machine whose cores other
# work shares, that made training 10-60x slower (the book's Caser, 2 threads: 5,600 windows/s beside
# another job). A spin of 3,000 rounds keeps the quiet-machine speed and gives 15x the shared-machine
# speed (benchmarks/bench_threads.py). It must be set before torch loads; it changes no result.
os.environ.setdefault("GOMP_SPINCOUNT", "3000")
# MKL picks summation orders by memory alignment, which changes from one process to the next: without
# this, about one run in a hundred came out different in the last digits with the same seed. Strict
# conditional bitwise reproducibility makes the same seed give the same numbers in every process.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

try:
    __version__ = version("seqrec")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
