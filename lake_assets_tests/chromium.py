"""Headless Chromium (Debian `chromium`) for tests that look at a rendered page: a screenshot or the DOM."""

import shutil
import subprocess
import time
from pathlib import Path

from .conftest import service_missing

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--virtual-time-budget=10000", "--window-size=1600,1000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    service_missing("headless Chromium", "apt-get install -y chromium chromium-driver")
    raise AssertionError  # unreachable: service_missing skips or fails


def browse(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)
