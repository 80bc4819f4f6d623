"""What the tests share that is not a test: local servers, process drivers, invariants, waits."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
