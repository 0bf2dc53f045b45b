"""What each long-running process imports at start: heavy libraries wait for the job that needs them.

A sidecar ingestor runs beside every chat backend, so what it imports is resident memory
on every host: numpy alone is ~15 MB, scikit-learn brings scipy, pandas and pyarrow
(~130 MB), Kiwi's model ~500 MB. Each process is imported in a fresh interpreter, as it
starts, and the modules it must not have loaded yet are listed by name.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "pyarrow", "scipy", "sklearn", "kiwipiepy", "duckdb")

# Process entry module -> the heavy modules it may load at start.
ALLOWED = {
    "ingestor.__main__": (),
    # The live latency sketch and quality histograms are numpy arrays.
    "ingestor.derived.__main__": ("numpy",),
    "analytics_api.__main__": ("numpy",),
}


@pytest.mark.parametrize("entry", sorted(ALLOWED))
def test_a_process_starts_without_the_batch_libraries(entry: str) -> None:
    """Importing the process's entry module loads no heavy library it does not need to serve."""
    code = f"import sys, {entry}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert loaded <= set(ALLOWED[entry]), f"{entry} imports {sorted(loaded - set(ALLOWED[entry]))} at start"
