"""``python -m training [train]``: the image's ``train`` entry point.

SageMaker runs ``docker run IMAGE train``, and so does the SageMaker SDK's local mode (the
``command`` of the compose file it writes); ``train`` is optional here all the same. Either runs
the job described by ``$SAGEMAKER_BASE_DIR`` (default ``/opt/ml``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from training.job import run
from training.sagemaker_env import SageMakerEnv

WORKER_ARGS = ["-m", "training", "train"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Fine-tune a text classifier under the SageMaker training contract "
        "(inputs and outputs under $SAGEMAKER_BASE_DIR, default /opt/ml).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="train",
        choices=["train"],
        help="what SageMaker (and the SDK's local mode) passes; optional",
    )
    parser.parse_args(argv)
    _configure_logging()
    return run(SageMakerEnv.from_environ(), WORKER_ARGS)


def _configure_logging() -> None:
    # Under torchrun only rank 0 speaks above warnings, so the log reads like one process.
    rank = os.environ.get("RANK", "0")
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO if rank == "0" else logging.WARNING,
        format=f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s",
    )


if __name__ == "__main__":
    sys.exit(main())
