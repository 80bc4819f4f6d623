"""An ORM query compiled to SQL once per process, then run with new values on every request.

Building a query through Django's ORM (a union, a subquery, an aggregate) costs thousands of
Python calls before a byte reaches the database: the per-client cap's read was 1,770 calls
of a 7,750-call accepting request (bench/accept_calls.py). Its shape never changes, only its
values, so it is written by the ORM once, with a mark in place of each value, and each run
puts the values where the marks were. The ORM stays the one place the query is written, so
its SQL still matches the indexes written for it.

Only for queries whose values reach the SQL unchanged as parameters: plain comparisons
(`field=value`, `Upper(Value(value))`), not lookups that rewrite their value (`iexact`,
`contains` and the like escape it on some databases), which `CompiledQuery` refuses when it
compiles (the mark would not be found among the parameters).

On PostgreSQL the statement is sent apart from its values and prepared
(framework.prepared_statements).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.db.models.sql import UpdateQuery

from framework.prepared_statements import statement_cursor


@dataclass(frozen=True)
class Mark:
    """Where a value goes: `example`, a value of its type that no query would hold as a
    constant, and `adapt(connection, value)`, the conversion Django's field applies to it on
    its way to the driver (an IP address field's, say); None for values passed as they are."""

    example: str | int
    adapt: Callable[[Any, Any], Any] | None = None


def ip_address_mark(example: str = "192.0.2.235") -> Mark:
    """A mark for a GenericIPAddressField's value (an address of the documentation range)."""
    return Mark(example, lambda connection, value: connection.ops.adapt_ipaddressfield_value(value))


@dataclass(frozen=True)
class _CompiledSql:
    """A statement's SQL and its parameters' slots."""

    sql: str
    # Each parameter: (the value's name, None) where a mark was, (None, the constant) otherwise.
    slots: list[tuple[str | None, Any]]


@dataclass(frozen=True)
class _Compiled(_CompiledSql):
    """A query's SQL, its parameters' slots, and what turns its rows into model instances."""

    # Django's converters per column (position, (converters, expression)), as the ORM applies
    # them to the rows it reads: decimals, booleans and dates on SQLite, say.
    converters: list[tuple[int, tuple[list[Any], Any]]]
    model: Any
    # The model's fields read (attribute names) and their columns, then (annotation, column).
    attnames: list[str]
    model_columns: slice
    annotations: list[tuple[str, int]]


C = TypeVar("C", bound=_CompiledSql)


class _CompiledOnce(Generic[C]):
    """What a compiled query and a compiled update share: the statement built by `build` with
    a mark in place of each value, compiled once per database alias and vendor, then filled
    with the values of each run."""

    def __init__(self, build: Callable[..., Any], **marks: Mark) -> None:
        self._build = build
        self._marks = marks
        self._compiled: dict[tuple[str, str], C] = {}

    def _compile(self, using: str) -> C:
        raise NotImplementedError

    def _prepare(self, using: str, values: dict[str, Any]) -> tuple[C, list[Any]]:
        connection = connections[using]
        key = (using, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(using)
        adapted = {name: _adapt(self._marks[name], connection, value) for name, value in values.items()}
        return compiled, _fill(compiled.slots, adapted)


class CompiledQuery(_CompiledOnce[_Compiled]):
    """`build(**marks)` returns the query with each named value in place; `rows(**values)`
    runs its SQL, compiled once per database alias and vendor, with the values given, and
    `instances(**values)` reads a model query's rows as its model's instances."""

    def __init__(self, build: Callable[..., QuerySet[Any]], **marks: Mark) -> None:
        super().__init__(build, **marks)

    def _compile(self, using: str) -> _Compiled:
        connection = connections[using]
        queryset = self._build(**{name: mark.example for name, mark in self._marks.items()})
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = _slots(connection, self._marks, params)
        klass_info = compiler.klass_info or {}
        if klass_info.get("related_klass_infos"):
            raise ValueError("select_related is not supported: its rows are not one model's")
        fields = klass_info.get("select_fields") or []
        columns = [expression for expression, _sql, _alias in compiler.select]
        return _Compiled(
            sql=sql,
            slots=slots,
            converters=list(compiler.get_converters(columns).items()),
            # A values() or values_list() query has no instances: its rows are what it reads.
            model=klass_info.get("model") if queryset._iterable_class is ModelIterable else None,
            attnames=[columns[i].target.attname for i in fields],
            model_columns=slice(fields[0], fields[-1] + 1) if fields else slice(0),
            annotations=list((compiler.annotation_col_map or {}).items()),
        )

    def sql_with_params(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> tuple[str, list[Any]]:
        """The query's SQL and its parameters for these values, for a caller that sends it
        inside a statement of its own (as a subquery)."""
        compiled, params = self._prepare(using, values)
        return compiled.sql, params

    def _run(self, using: str, values: dict[str, Any]) -> tuple[_Compiled, list[tuple[Any, ...]]]:
        compiled, params = self._prepare(using, values)
        with statement_cursor(using) as cursor:
            cursor.execute(compiled.sql, params)
            return compiled, cursor.fetchall()

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[tuple[Any, ...]]:
        """The query's rows for these values (raw database values, as `values_list` reads them
        before Django's converters: plain ints and strings for the queries this is for)."""
        return self._run(using, values)[1]

    def instances(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Any]:
        """The rows of a query of model instances (`Model.objects.filter(...)`, annotations
        allowed, no `select_related`) as the ORM would return them: each value through the
        field's converters, each row through `Model.from_db`, each annotation an attribute."""
        compiled, rows = self._run(using, values)
        if compiled.model is None:
            raise ValueError("not a query of model instances")
        connection = connections[using]
        model, attnames, columns = compiled.model, compiled.attnames, compiled.model_columns
        found = []
        for raw in rows:
            row = list(raw)
            for position, (converters, expression) in compiled.converters:
                value = row[position]
                for converter in converters:
                    value = converter(value, expression, connection)
                row[position] = value
            instance = model.from_db(using, attnames, row[columns])
            for name, position in compiled.annotations:
                setattr(instance, name, row[position])
            found.append(instance)
        return found


class CompiledUpdate(_CompiledOnce[_CompiledSql]):
    """An ORM update compiled once per process: `build(**marks)` returns the queryset to
    update and its changes (`{"reserved": F("reserved") + quantity}`), as `update()` takes
    them; `run(**values)` sends its SQL with the values given and returns the rows updated."""

    def __init__(self, build: Callable[..., tuple[QuerySet[Any], dict[str, Any]]], **marks: Mark) -> None:
        super().__init__(build, **marks)

    def _compile(self, using: str) -> _CompiledSql:
        queryset, changes = self._build(**{name: mark.example for name, mark in self._marks.items()})
        # As QuerySet.update() builds its query, short of running it.
        query = queryset.query.chain(UpdateQuery)
        assert isinstance(query, UpdateQuery)
        query.add_update_values(changes)
        sql, params = query.get_compiler(using=using).as_sql()
        return _CompiledSql(sql, _slots(connections[using], self._marks, params))

    def run(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> int:
        """Update the rows for these values; how many were updated."""
        compiled, params = self._prepare(using, values)
        with statement_cursor(using) as cursor:
            cursor.execute(compiled.sql, params)
            return cursor.rowcount


def _adapt(mark: Mark, connection: Any, value: Any) -> Any:
    return mark.adapt(connection, value) if mark.adapt else value


def _slots(connection: Any, marks: dict[str, Mark], params: Any) -> list[tuple[str | None, Any]]:
    """Each parameter of compiled SQL: (the value's name, the type the driver was given it as
    or None) where a mark was, (None, the constant) otherwise; refuses SQL that lost a mark
    (a lookup that rewrote its value)."""
    adapted = {name: _adapt(mark, connection, mark.example) for name, mark in marks.items()}
    slots: list[tuple[str | None, Any]] = []
    for param in params:
        name = next((name for name, value in adapted.items() if _same(param, value)), None)
        # psycopg 3's typed integers (Int4), which Django gives an expression's values.
        typed = type(param) if name and type(param) is not type(adapted[name]) else None
        slots.append((name, typed) if name else (None, param))
    missing = set(marks) - {name for name, _ in slots}
    if missing:
        raise ValueError(f"values not passed through as parameters (a rewriting lookup?): {sorted(missing)}")
    return slots


def _fill(slots: list[tuple[str | None, Any]], values: dict[str, Any]) -> list[Any]:
    """The parameters of compiled SQL: each mark's value (typed as the ORM typed it), each constant."""
    return [(extra(values[name]) if extra else values[name]) if name else extra for name, extra in slots]


def _same(param: Any, value: Any) -> bool:
    # An int subclass (psycopg's Int4) is the int it wraps; a bool is not an int here.
    if isinstance(param, int) and type(value) is int and type(param) is not bool:
        return param == value
    return type(param) is type(value) and param == value
