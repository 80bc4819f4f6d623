"""Log lines that say only what happened: no value a client sent can forge another line.

A shopper's email, a payment method id, a header: any value logged may carry a newline or
a terminal escape. The filter formats each record's message and escapes every control
character in it (a newline becomes the two characters `\\n`), so one record is one line
and reads the same in a terminal, a file or a log collector. Tracebacks are formatted by
the handler's formatter after this and keep their lines.
"""

import logging

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
CONTROL_CHARACTERS = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
ESCAPES = {code: chr(code).encode("unicode_escape").decode("ascii") for code in CONTROL_CHARACTERS}


def escape_control_characters(text: str) -> str:
    """`text` with each control character written as its Python escape (`\\n`, `\\x1b`)."""
    return text.translate(ESCAPES)


class EscapeControlCharacters(logging.Filter):
    """A handler filter: the record's message formatted once, control characters escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        record.msg, record.args = escape_control_characters(message), ()
        return True
