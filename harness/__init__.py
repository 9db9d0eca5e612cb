"""What the tests and the benchmarks both run on: real Redis and service processes,
images, hostile clients, metrics and socket counts."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root."""

MODELS_DIR = ROOT / "models"
"""The shipped models."""
