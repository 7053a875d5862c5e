"""The machine a run was measured on (every row carries it: figures mean little without it)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe_machine", "machine_summary"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_machine() -> dict[str, Any]:
    """CPU model and cores, RAM, OS, Python and the versions of the libraries measured."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "polars": _version("polars"),
        "pandas": _version("pandas"),
        "datacompy": _version("datacompy"),
        "nav_crm_ops": _version("nav-crm-ops"),
    }


def machine_summary(machine: dict[str, Any]) -> str:
    """One line for the table: ``AMD EPYC, 2 cores, 23.4 GB, Python 3.11.9, polars 2.1.0``."""
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM, "
            f"Python {machine['python']}, polars {machine['polars']}")
