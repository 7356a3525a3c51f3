"""Logging set-up: one line per event, `event key=value …`, timestamps, level, logger name."""

from __future__ import annotations

import logging
import os
import sys

from frontwire.progress import quiet_third_party_bars


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("FRONTWIRE_LOG_LEVEL", "INFO").upper())
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    for noisy in ("httpx", "urllib3", "alembic", "mlflow.store", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_third_party_bars()  # bars drawn into a file or CI log are megabytes of \r frames
