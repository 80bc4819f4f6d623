"""A model's rows written with SQL built once per process: an `INSERT ... RETURNING` per
model and number of rows, an `UPDATE` per set of columns.

Django's ORM builds every INSERT and UPDATE afresh: `save()` and `bulk_create()` walk the
model's options, build a query and compile it on every call, some 200 to 400 Python calls a
row before the database sees it, and the accepting request writes an order, its lines, a
state change and a history event (bench/accept_calls.py). A table's shape never changes, so
its statements are written here once per database alias and vendor, from the model's
`_meta`, and each write passes only the values.

The values still pass through each field's `pre_save` and `get_db_prep_save` (an insert's
automatic times and defaults, decimals on SQLite, JSON, IP addresses), and what an update
reads back through the converters a query would apply: the rows are the ORM's. What is
left out is what these models do not use: `save()` overrides and `pre_save`/`post_save`
receivers, which `writes_for` refuses (django-auditlog's registrations are receivers), and
expressions as values (`F("stock") - 1`): plain values only.

On PostgreSQL the statements are sent apart from their values and prepared
(framework.prepared_statements).
"""

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model
from django.db.models.fields import AutoFieldMixin
from django.db.models.signals import post_save, pre_save

from framework.prepared_statements import statement_cursor

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


class ModelWrites(Generic[M]):
    """Inserts and updates of one model's rows, their SQL compiled at first use per database."""

    def __init__(self, model: type[M]) -> None:
        meta = model._meta
        if model.save is not Model.save or pre_save.has_listeners(model) or post_save.has_listeners(model):
            raise TypeError(f"{meta.label} has its own save() or save signals: write it through the ORM")
        if not isinstance(meta.pk, AutoFieldMixin):
            raise TypeError(f"{meta.label}: only models whose primary key the database numbers")
        self.model: type[M] = model
        self._pk: Field = meta.pk
        # Every column but the primary key, in the model's order: an insert's columns.
        self._fields: list[Field] = [f for f in meta.concrete_fields if not f.primary_key]
        self._by_name: dict[str, Field] = {f.attname: f for f in meta.concrete_fields}
        # Per column: how its value is made ready for the driver, whether a None is written
        # as NULL without that (`_none_is_null`), and for an insert how it is read from a row.
        self._preparers: dict[str, Callable[[Any, Any], Any]] = {f.attname: _preparer(f) for f in meta.concrete_fields}
        self._none_is_null: dict[str, bool] = {f.attname: _none_is_null(f) for f in meta.concrete_fields}
        self._insert_columns: list[tuple[Callable[[Model], Any], Callable[[Any, Any], Any], bool]] = [
            (_reader(f), self._preparers[f.attname], self._none_is_null[f.attname]) for f in self._fields
        ]
        self._sql: dict[tuple, str] = {}
        self._converters: dict[tuple[str, str], list[tuple[str, list[Converter], Any]]] = {}

    # --- inserts ---------------------------------------------------------------------------

    def insert(self, rows: Sequence[M], *, using: str = DEFAULT_DB_ALIAS, cursor: Any = None) -> None:
        """Insert the new `rows` in one statement; each gets its primary key and is left as
        `save()` leaves a new row (automatic times and defaults set, `_state` saved).
        `cursor`: one of `using`'s the caller writes several models' rows through (a cursor
        costs some 30 Python calls to open)."""
        if cursor is None:
            with statement_cursor(using) as cursor:
                return self.insert(rows, using=using, cursor=cursor)
        connection = connections[using]
        params = [value for row in rows for value in self._insert_values(row, connection)]
        features = connection.features
        if features.can_return_rows_from_bulk_insert or (len(rows) == 1 and features.can_return_columns_from_insert):
            cursor.execute(self._insert_sql(connection, len(rows), if_absent=False), params)
            pks = [pk for (pk,) in cursor.fetchall()]
        else:  # a database that cannot return the keys it gives: one row at a time
            sql = self._insert_sql(connection, 1, if_absent=False, returning=False)
            width, table = len(self._fields), self.model._meta.db_table
            pks = []
            for start in range(0, len(params), width):
                cursor.execute(sql, params[start : start + width])
                pks.append(connection.ops.last_insert_id(cursor, table, self._pk.column))
        for row, pk in zip(rows, pks, strict=True):
            self._saved(row, pk, using)
        return None

    def insert_with_children(
        self, row: M, children: Sequence[Model], *, parent_field: str, using: str = DEFAULT_DB_ALIAS
    ) -> None:
        """Insert the new `row` and its new `children` (rows of one or more models, each
        pointing at it by `parent_field`; an order's lines and its first history event), each
        left as `insert` leaves it: on PostgreSQL in one statement (the parent's insert a CTE
        whose key each child row takes), elsewhere in one per model."""
        connection = connections[using]
        groups = _by_model(children)
        if connection.vendor != "postgresql" or not children:
            with statement_cursor(using) as cursor:
                self.insert([row], using=using, cursor=cursor)
                for group in groups:
                    for child in group:
                        setattr(child, parent_field, row)
                    writes_for(type(group[0])).insert(group, using=using, cursor=cursor)
            return
        group_writes = [writes_for(type(group[0])) for group in groups]
        parent_columns = [w._by_name[cast(Field, w.model._meta.get_field(parent_field)).attname] for w in group_writes]
        shape = tuple((w.model, len(group)) for w, group in zip(group_writes, groups, strict=True))
        key = ("insert_with_children", connection.alias, parent_field, shape)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self._insert_with_children_sql(connection, group_writes, parent_columns, groups)
        params = self._insert_values(row, connection)
        for writes, parent_column, group in zip(group_writes, parent_columns, groups, strict=True):
            skip = writes._fields.index(parent_column)
            for child in group:
                values = writes._insert_values(child, connection)
                params += values[:skip] + values[skip + 1 :]
        with statement_cursor(using) as cursor:
            cursor.execute(sql, params)
            written = cursor.fetchall()
        self._saved(row, written[0][1], using)
        for child, (pk, _parent_pk) in zip((c for group in groups for c in group), written, strict=True):
            setattr(child, parent_field, row)
            writes_for(type(child))._saved(child, pk, using)

    def _insert_with_children_sql(
        self, connection: Any, group_writes: list["ModelWrites"], parent_columns: list[Field], groups: list[list[Model]]
    ) -> str:
        """`WITH parent AS (<insert>), c0 AS (<children of one model>), ... SELECT` each
        child's key and the parent's, in the children's order."""
        qn = connection.ops.quote_name
        parts = [f"parent AS ({self._insert_sql(connection, 1, if_absent=False)})"]
        selects = []
        for n, (writes, parent_column, group) in enumerate(zip(group_writes, parent_columns, groups, strict=True)):
            one = (
                "(" + ", ".join("(SELECT * FROM parent)" if f is parent_column else "%s" for f in writes._fields) + ")"
            )
            pk, parent = qn(writes._pk.column), qn(parent_column.column)
            parts.append(
                f"c{n} AS ({writes._insert_into(connection)} VALUES {', '.join([one] * len(group))} "
                f"RETURNING {pk}, {parent})"
            )
            selects.append(f"SELECT {pk}, {parent} FROM c{n}")
        return f"WITH {', '.join(parts)} {' UNION ALL '.join(selects)}"

    def insert_if_absent(self, row: M, *, using: str = DEFAULT_DB_ALIAS) -> bool:
        """Insert `row` unless one of its unique constraints finds a row already there
        (`INSERT ... ON CONFLICT DO NOTHING`); True when it was inserted and is saved."""
        connection = connections[using]
        with statement_cursor(using) as cursor:
            cursor.execute(self._insert_sql(connection, 1, if_absent=True), self._insert_values(row, connection))
            inserted = cursor.fetchone()
        if inserted is None:
            return False
        self._saved(row, inserted[0], using)
        return True

    def _insert_values(self, row: M, connection: Any) -> list[Any]:
        values = []
        for read, prepare, none_is_null in self._insert_columns:
            value = read(row)
            values.append(None if value is None and none_is_null else prepare(value, connection))
        return values

    def _saved(self, row: M, pk: Any, using: str) -> None:
        setattr(row, self._pk.attname, pk)
        row._state.adding, row._state.db = False, using

    def _insert_into(self, connection: Any) -> str:
        """`INSERT INTO <table> (<every column but the key>)`: the head of each insert."""
        qn = connection.ops.quote_name
        return f"INSERT INTO {qn(self.model._meta.db_table)} ({', '.join(qn(f.column) for f in self._fields)})"

    def _insert_sql(self, connection: Any, rows: int, *, if_absent: bool, returning: bool = True) -> str:
        key = ("insert", connection.alias, connection.vendor, rows, if_absent, returning)
        sql = self._sql.get(key)
        if sql is None:
            qn = connection.ops.quote_name
            one = f"({', '.join(['%s'] * len(self._fields))})"
            sql = f"{self._insert_into(connection)} VALUES {', '.join([one] * rows)}"
            if if_absent:
                sql += " ON CONFLICT DO NOTHING"
            if returning:
                sql += f" RETURNING {qn(self._pk.column)}"
            self._sql[key] = sql
        return sql

    # --- updates ---------------------------------------------------------------------------

    def update(
        self,
        pk: Any,
        values: Mapping[str, Any],
        *,
        where: Mapping[str, Any] | None = None,
        along: Sequence[Model] = (),
        using: str = DEFAULT_DB_ALIAS,
    ) -> int:
        """Write `values` (by attribute name) to the row `pk`, only while its columns hold
        `where`'s values when given; the number of rows written (0 or 1). `along`: new rows
        (of models `writes_for` takes) inserted only when the row was written, each left as
        `insert` leaves it; on PostgreSQL in the same statement."""
        return 0 if self._update_and_insert(pk, values, where, along, using, returning=False) is None else 1

    def update_returning(
        self,
        pk: Any,
        values: Mapping[str, Any],
        *,
        where: Mapping[str, Any] | None = None,
        along: Sequence[Model] = (),
        using: str = DEFAULT_DB_ALIAS,
    ) -> dict[str, Any] | None:
        """`update`, in one statement with the row read back (`UPDATE ... RETURNING`, which
        locks it until the transaction ends): every column by attribute name, converted as a
        query converts it; None when no row matched."""
        connection = connections[using]
        row = self._update_and_insert(pk, values, where, along, using, returning=True)
        if row is None:
            return None
        read: dict[str, Any] = {}
        for value, (name, converters, column) in zip(row, self._row_converters(connection), strict=True):
            for convert in converters:
                value = convert(value, column, connection)
            read[name] = value
        return read

    def _update_and_insert(
        self,
        pk: Any,
        values: Mapping[str, Any],
        where: Mapping[str, Any] | None,
        along: Sequence[Model],
        using: str,
        *,
        returning: bool,
    ) -> tuple | None:
        """The update's returned row (`returning`; else an empty tuple), None when no row
        matched; `along` inserted when one did. On PostgreSQL one statement: the update a CTE,
        each new row inserted from it (`INSERT ... SELECT ... FROM updated`, so only when it
        matched), their keys read back after the updated row's columns."""
        connection = connections[using]
        in_one = bool(along) and connection.vendor == "postgresql"
        sql, params = self._update(connection, pk, values, where, returning=returning or in_one)
        if in_one:
            others = [writes_for(type(row)) for row in along]
            key = ("update_and_insert", connection.alias, sql, tuple(other.model for other in others))
            combined = self._sql.get(key)
            if combined is None:
                inserts = [
                    f"added{n} AS ({other._insert_select_sql(connection, 'updated')})" for n, other in enumerate(others)
                ]
                keys = ", ".join(f"(SELECT * FROM added{n})" for n in range(len(others)))
                combined = self._sql[key] = (
                    f"WITH updated AS ({sql}), {', '.join(inserts)} SELECT updated.*, {keys} FROM updated"
                )
            for other, row in zip(others, along, strict=True):
                params += other._insert_values(row, connection)
            with statement_cursor(using) as cursor:
                cursor.execute(combined, params)
                written = cursor.fetchone()
            if written is None:
                return None
            for other, row, new_pk in zip(others, along, written[-len(along) :], strict=True):
                other._saved(row, new_pk, using)
            return tuple(written[: -len(along)]) if returning else ()
        with statement_cursor(using) as cursor:
            cursor.execute(sql, params)
            written = cursor.fetchone() if returning else (() if cursor.rowcount else None)
        if written is None:
            return None
        for row in along:
            writes_for(type(row)).insert([row], using=using)
        return tuple(written) if returning else ()

    def _insert_select_sql(self, connection: Any, source: str) -> str:
        """`INSERT ... SELECT <one row's values> FROM source RETURNING <key>`: one new row
        when `source` (a CTE of the same statement) has one."""
        key = ("insert_select", connection.alias, connection.vendor, source)
        sql = self._sql.get(key)
        if sql is None:
            qn = connection.ops.quote_name
            sql = self._sql[key] = (
                f"{self._insert_into(connection)} "
                f"SELECT {', '.join(['%s'] * len(self._fields))} FROM {source} RETURNING {qn(self._pk.column)}"
            )
        return sql

    def _update(
        self, connection: Any, pk: Any, values: Mapping[str, Any], where: Mapping[str, Any] | None, *, returning: bool
    ) -> tuple[str, list[Any]]:
        where = where or {}
        key = ("update", connection.alias, connection.vendor, tuple(values), tuple(where), returning)
        sql = self._sql.get(key)
        if sql is None:
            qn = connection.ops.quote_name
            fields = self._by_name
            # The row is found by its key alone; `where` only checks it. Written so, a check can
            # never be taken for a way to the row: with `state = 'VALIDATED'` the planner, whose
            # statistics said few orders were unpaid, read the index of unpaid orders (or the
            # one by state) whole and filtered it by key, 3,194 buffers instead of 4 with 2,000
            # orders unpaid. A NULL value matches a NULL column.
            checks = (f"{qn(fields[name].column)} IS NOT DISTINCT FROM %s" for name in where)
            conditions = [f"{qn(self._pk.column)} = %s", *checks]
            sql = (
                f"UPDATE {qn(self.model._meta.db_table)} "
                f"SET {', '.join(f'{qn(fields[name].column)} = %s' for name in values)} "
                f"WHERE {' AND '.join(conditions)}"
            )
            if returning:
                sql += f" RETURNING {', '.join(qn(f.column) for f in fields.values())}"
            self._sql[key] = sql
        none_is_null = self._none_is_null
        params = [
            None if value is None and none_is_null[name] else self._preparers[name](value, connection)
            for name, value in values.items()
        ]
        params.append(self._pk.get_db_prep_value(pk, connection, prepared=False))
        params.extend(
            self._by_name[name].get_db_prep_value(value, connection, prepared=False) for name, value in where.items()
        )
        return sql, params

    def _row_converters(self, connection: Any) -> list[tuple[str, list[Converter], Any]]:
        """Per column of a returned row: its attribute name and the converters a query's
        compiler would apply to it (SQLCompiler.get_converters), found once per database."""
        key = (connection.alias, connection.vendor)
        converters = self._converters.get(key)
        if converters is None:
            converters = []
            for name, field in self._by_name.items():
                column = field.get_col(self.model._meta.db_table)
                converters.append(
                    (name, connection.ops.get_db_converters(column) + column.get_db_converters(connection), column)
                )
            self._converters[key] = converters
        return converters


def _reader(field: Field) -> Callable[[Model], Any]:
    """`field.pre_save(row, add=True)`; the attribute itself, read without a Python call,
    where the field does not override `pre_save` (Field.pre_save only reads it)."""
    if type(field).pre_save is Field.pre_save:
        return operator.attrgetter(field.attname)
    return functools.partial(field.pre_save, add=True)


def _preparer(field: Field) -> Callable[[Any, Any], Any]:
    """`field.get_db_prep_save(value, connection)`; straight to `get_db_prep_value`, where
    the field does not override it (Field.get_db_prep_save only lets expressions through)."""
    if type(field).get_db_prep_save is Field.get_db_prep_save:
        return functools.partial(field.get_db_prep_value, prepared=False)
    return field.get_db_prep_save


def _none_is_null(field: Field) -> bool:
    """Whether the field writes None as NULL whatever the database: every field of Django's
    own does (a JSONField too: JSON's null is `Value(None, JSONField())`), so its five or
    so conversion calls are skipped for the empty times and keys of a new row."""
    return type(field).__module__.startswith("django.db.models.fields")


def _by_model(rows: Sequence[Model]) -> list[list[Model]]:
    """`rows` in runs of one model each, in their order."""
    groups: list[list[Model]] = []
    for row in rows:
        if groups and type(groups[-1][0]) is type(row):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


@functools.cache
def writes_for(model: type[M]) -> ModelWrites[M]:
    """The one `ModelWrites` of `model` in this process (its compiled statements are shared)."""
    return ModelWrites(model)
