"""Stopping a service the tests started as a user would: SIGTERM (a drain), then SIGKILL."""

from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen, timeout_s: float) -> int:
    """SIGTERM, wait ``timeout_s`` for the drain, kill if it is not done; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
