"""Log lines that say only what happened: no value a client sent can forge another line.

A shopper's email, a payment method id, a header: any value logged may carry a newline or
a terminal escape. The plain formatter escapes every control character of each record's
message as it writes it (a newline becomes the two characters `\\n`), so one record is one
line and reads the same in a terminal, a file or a log collector; the record itself is left
as it was for other handlers (JSON escapes on its own). Tracebacks keep their lines.
"""

import logging

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL_CHARACTERS = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
ESCAPES = {code: chr(code).encode("unicode_escape").decode("ascii") for code in CONTROL_CHARACTERS}


def escape_control_characters(text: str) -> str:
    """`text` with each control character written as its Python escape (`\\n`, `\\x1b`)."""
    return text.translate(ESCAPES)


class OneLineFormatter(logging.Formatter):
    """The plain text formatter, writing each record's message with its control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = escape_control_characters(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


class RefusalWithoutTraceback(logging.Filter):
    """A refused request (PermissionDenied, which Django logs as "Forbidden" with the
    exception) is written as its one warning line: a refusal is an answer, not a fault, and
    its traceback only buried the lines that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.core.exceptions import PermissionDenied

        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
