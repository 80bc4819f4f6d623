"""A row written only when no row is in the way: one `INSERT ... ON CONFLICT DO NOTHING`.

For the claims the pipeline makes once per order (an email's, a receipt's number), where
`get_or_create` spent a read, a savepoint or a transaction and the insert on what is nearly
always the first and only claim. The unique constraints decide between racing workers.
The statement is the model's compiled insert (framework/compiled_writes.py).
"""

from django.db.models import Model

from framework.compiled_writes import writes_for


def insert_if_absent(row: Model) -> bool:
    """Insert `row` unless one of its unique constraints finds a row already there; True
    when it was inserted (`row` then has its primary key and is saved)."""
    return writes_for(type(row)).insert_if_absent(row)
