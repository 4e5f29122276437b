"""seqrec: sequence-aware (next-item) recommendation."""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that spin while they wait make PyTorch 10-60x slower on a machine whose cores other
# work shares (measured: 3,300 against 94,000 windows/s); sleeping waits cost little on a quiet one.
# This must be set before torch loads; it changes no result (the thread count is what results depend on).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("seqrec")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
