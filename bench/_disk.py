"""What one durable commit costs on this disk, printed next to benchmark figures."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path


def fsync_ms(directory: Path, n: int = 50) -> float:
    """Median time of write+fsync of 4 KiB in ``directory`` (what one commit costs)."""
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times)
