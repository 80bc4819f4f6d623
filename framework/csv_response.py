"""CSV downloads streamed row by row, so a long export never sits whole in memory."""

import csv
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse


class _Line:
    """A file-like object whose write returns the line, for csv.writer to hand back."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """Each row as one CSV line."""
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow(row)


def csv_download(filename: str, rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """A CSV attachment streamed from `rows` (the first row being the header)."""
    return StreamingHttpResponse(
        csv_lines(rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
