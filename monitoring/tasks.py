"""django-q2 entry points of monitoring (named in framework.queue.Task)."""

from monitoring import alarms


def evaluate_alarms() -> int:
    """The scheduled evaluation of every alarm rule; how many fire."""
    return len(alarms.evaluate_alarms())
