"""Quiet, offline defaults for Rasa and TensorFlow, applied once before they are imported.

Rasa reads its switches from environment variables at import time; this is the one place
that sets them, so telemetry never tries the network and the training cache lives in our
state directory rather than in whatever directory the command was started from.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

NOISY_LOGGERS = ("rasa", "tensorflow", "absl", "h5py", "matplotlib", "sanic", "apscheduler")


def prepare_rasa(state_dir: Path) -> None:
    defaults = {
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RASA_CACHE_DIRECTORY": str(state_dir / "rasa-cache"),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "LOG_LEVEL_LIBRARIES": "ERROR",
        "LOG_LEVEL": "WARNING",  # also hides Rasa's training progress bars
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # structlog otherwise prints every debug event
