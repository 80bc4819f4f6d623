"""django-q2 entry points: thin, one order id each; the pipeline re-reads the row."""

from orders import pipeline, reservations, sweeper


def advance_order(order_id: int) -> None:
    pipeline.advance_order(order_id)


def compensate_order(order_id: int) -> None:
    pipeline.run_step(order_id, "refund_or_void")


def notify_failure(order_id: int) -> None:
    pipeline.run_step(order_id, "send_failure_notification")


def publish_order_state(order_id: int) -> None:
    pipeline.run_step(order_id, "publish_order_state")


def sweep_stuck_orders() -> int:
    return sweeper.sweep_stuck_orders()


def release_expired_reservations() -> int:
    return reservations.release_expired_reservations()
