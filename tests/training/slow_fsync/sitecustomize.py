"""A disk whose first fsync takes ``SLOW_FSYNC_S`` seconds, in torchrun's worker processes.

Put on ``PYTHONPATH`` of a training job, it makes the first checkpoint save take that long, as
a large model's checkpoint on a slow volume would: the stand-in for "a save that needs longer
than torchrun's default grace". Python imports ``sitecustomize`` at start-up by itself.
"""

from __future__ import annotations

import os
import time

_DELAY_S = float(os.environ.get("SLOW_FSYNC_S", "0"))

if _DELAY_S > 0 and "LOCAL_RANK" in os.environ:
    _real_fsync = os.fsync
    _slow = [True]

    def _fsync(fd: int) -> None:
        if _slow:
            _slow.clear()
            time.sleep(_DELAY_S)
        _real_fsync(fd)

    os.fsync = _fsync
