"""A row written only when no row is in the way: one `INSERT ... ON CONFLICT DO NOTHING`.

For the claims the pipeline makes once per order (an email's, a receipt's number), where
`get_or_create` spent a read, a savepoint or a transaction and the insert on what is nearly
always the first and only claim. The unique constraints decide between racing workers.
"""

from django.db import connection
from django.db.models import Model


def insert_if_absent(row: Model) -> bool:
    """Insert `row` unless one of its unique constraints finds a row already there; True
    when it was inserted (`row` then has its primary key and is saved)."""
    meta = row._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING RETURNING {qn(meta.pk.column)}",
            values,
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding, row._state.db = False, connection.alias
    return True
