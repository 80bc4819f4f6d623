"""The run's progress lines on standard output."""

import time


def log(message: str) -> None:
    """Print one timestamped progress line at once (the run takes long; the lines show where it is)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
