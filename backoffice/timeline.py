"""The order page's timeline: the state machine drawn as SVG with the path this order took,
and the steps it ran (attempts, outcome, time), as Step Functions' execution graph shows.

Drawn on the server from the tables themselves (`transitions.TRANSITIONS`, `flow.FLOW`), so
the picture can never disagree with the machine; read from the order's history alone.
"""

from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

from orders.flow import FLOW
from orders.models import EventKind, Order, OrderEvent
from orders.models import OrderState as S
from orders.transitions import TRANSITIONS

# Where each state stands: the happy path on top, the ends below.
POSITIONS: dict[str, tuple[int, int]] = {
    S.PENDING: (80, 60),
    S.VALIDATED: (250, 60),
    S.PAID: (420, 60),
    S.CONFIRMED: (590, 60),
    S.COMPLETED: (760, 60),
    S.REJECTED: (80, 210),
    S.PAYMENT_FAILED: (250, 210),
    S.FAILED: (420, 210),
    S.CANCELLED: (590, 210),
}
HALF_WIDTH, HALF_HEIGHT = 70, 18
REDRIVE_OFFSET = 16
WIDTH, HEIGHT = 850, 260
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "redrive": "#6a1b9a", "idle": "#c8c8c8"}
FAILURE_STATES = {S.REJECTED, S.PAYMENT_FAILED, S.FAILED, S.CANCELLED}


@dataclass(frozen=True)
class StepSummary:
    """One step as this order ran it: how often, how it last ended, how long in all."""

    step: str
    attempts: int
    outcome: str
    duration_ms: int
    actor: str


def step_summaries(events: list[OrderEvent]) -> list[StepSummary]:
    """The steps the order ran, in the order they first ran, the pipeline's and the managers'."""
    by_step: dict[str, list[OrderEvent]] = {}
    for event in events:
        by_step.setdefault(event.step, []).append(event)
    return [
        StepSummary(
            step=step,
            attempts=max(e.attempt for e in runs),
            outcome=runs[-1].outcome,
            duration_ms=sum(e.duration_ms for e in runs),
            actor=runs[-1].actor or runs[-1].actor_kind,
        )
        for step, runs in by_step.items()
    ]


def _border(centre: tuple[int, int], towards: tuple[int, int]) -> tuple[float, float]:
    """Where the line from a state's box centre towards another point leaves the box."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    scale = min(HALF_WIDTH / abs(dx) if dx else float("inf"), HALF_HEIGHT / abs(dy) if dy else float("inf"))
    return centre[0] + dx * scale, centre[1] + dy * scale


def _label_place(x1: float, y1: float, x2: float, y2: float, kind: str) -> tuple[float, float, str]:
    """Where a move's label goes: above the boxes for a move along the top row, else beside
    the line's middle, a redrive's on its right and the others on their left."""
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    if y1 == y2:
        return mx, y1 - HALF_HEIGHT - 8, "middle"
    if kind == "redrive":
        return mx + 8, my, "start"
    return mx - 8, my, "end"


def _moves(events: list[OrderEvent]) -> dict[tuple[str, str], list[OrderEvent]]:
    moves: dict[tuple[str, str], list[OrderEvent]] = {}
    for event in events:
        if event.kind == EventKind.STATE_CHANGED:
            moves.setdefault((event.from_state, event.to_state), []).append(event)
    return moves


def state_graph_svg(order: Order, events: list[OrderEvent]) -> SafeString:
    """The state machine as an SVG picture: every allowed move, the ones this order made
    coloured by outcome and labelled with the step, its attempts and its time."""
    moves = _moves(events)
    visited = {S.PENDING} | {to for _, to in moves}
    attempts = {s.step: s for s in step_summaries(events)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-label="State machine with the path this order took" class="order-state-graph">',
        "<defs>",
        *(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour in COLOURS.items()
        ),
        "</defs>",
    ]
    labels = []
    for from_state, targets in TRANSITIONS.items():
        for to_state in sorted(targets):
            start, end = POSITIONS[from_state], POSITIONS[to_state]
            x1, y1 = _border(start, end)
            x2, y2 = _border(end, start)
            if from_state == S.FAILED:  # beside the move into FAILED it undoes, not on top of it
                x1, x2 = x1 + REDRIVE_OFFSET, x2 + REDRIVE_OFFSET
            taken = moves.get((from_state, to_state))
            if taken is None:
                parts.append(
                    f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{COLOURS["idle"]}" '
                    f'stroke-dasharray="4 3" marker-end="url(#arrow-idle)"/>'
                )
                continue
            kind = "redrive" if from_state == S.FAILED else "failed" if to_state in FAILURE_STATES else "succeeded"
            parts.append(
                f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{COLOURS[kind]}" '
                f'stroke-width="3" marker-end="url(#arrow-{kind})" data-move="{from_state}-{to_state}"/>'
            )
            step = taken[-1].step
            summary = attempts.get(step)
            text = f"{step} ×{summary.attempts} {summary.duration_ms} ms" if summary else step
            if len(taken) > 1:
                text += f" ({len(taken)} times)"
            mx, my, anchor = _label_place(x1, y1, x2, y2, kind)
            labels.append(
                f'<text x="{mx:.0f}" y="{my:.0f}" font-size="10" text-anchor="{anchor}" fill="{COLOURS[kind]}" '
                f'paint-order="stroke" stroke="#fff" stroke-width="3">{escape(text)}</text>'
            )
    for state, (x, y) in POSITIONS.items():
        current = state == order.state
        fill = ("#fdecea" if state in FAILURE_STATES else "#e8f5e9") if state in visited else "#f7f7f7"
        weight = "bold" if current else "normal"
        stroke = "#111" if current else ("#888" if state in visited else COLOURS["idle"])
        steps = ", ".join(step.name for step in FLOW.get(state, ()))
        title = f"{state}: {steps}" if steps else f"{state}: an end"
        parts.append(
            f'<g data-state="{state}"{" data-current" if current else ""}><title>{escape(title)}</title>'
            f'<rect x="{x - HALF_WIDTH}" y="{y - HALF_HEIGHT}" width="{2 * HALF_WIDTH}" height="{2 * HALF_HEIGHT}" '
            f'rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{3 if current else 1.5}"/>'
            f'<text x="{x}" y="{y + 4}" font-size="12" text-anchor="middle" font-weight="{weight}"'
            f' fill="{"#111" if state in visited else "#999"}">{escape(state)}</text></g>'
        )
    parts += labels
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped above
