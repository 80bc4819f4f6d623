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
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet


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


class CompiledQuery:
    """`build(**marks)` returns the query with each named value in place; `rows(**values)`
    runs its SQL, compiled once per database alias and vendor, with the values given."""

    def __init__(self, build: Callable[..., QuerySet[Any]], **marks: Mark) -> None:
        self._build = build
        self._marks = marks
        self._compiled: dict[tuple[str, str], tuple[str, list[tuple[str | None, Any]]]] = {}

    def _compile(self, using: str) -> tuple[str, list[tuple[str | None, Any]]]:
        connection = connections[using]
        queryset = self._build(**{name: mark.example for name, mark in self._marks.items()})
        sql, params = queryset.query.get_compiler(using=using).as_sql()
        adapted = {
            name: mark.adapt(connection, mark.example) if mark.adapt else mark.example
            for name, mark in self._marks.items()
        }
        # Each parameter: (the value's name, None) where a mark was, (None, the constant) otherwise.
        slots: list[tuple[str | None, Any]] = []
        for param in params:
            name = next((name for name, value in adapted.items() if _same(param, value)), None)
            slots.append((name, None) if name else (None, param))
        missing = set(self._marks) - {name for name, _ in slots}
        if missing:
            raise ValueError(f"values not passed through as parameters (a rewriting lookup?): {sorted(missing)}")
        return sql, slots

    def sql_with_params(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> tuple[str, list[Any]]:
        """The query's SQL and its parameters for these values, for a caller that sends it
        inside a statement of its own (as a subquery)."""
        connection = connections[using]
        key = (using, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(using)
        sql, slots = compiled
        adapted = {}
        for name, value in values.items():
            adapt = self._marks[name].adapt
            adapted[name] = adapt(connection, value) if adapt else value
        return sql, [adapted[name] if name else constant for name, constant in slots]

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[tuple[Any, ...]]:
        """The query's rows for these values (raw database values, as `values_list` reads them
        before Django's converters: plain ints and strings for the queries this is for)."""
        sql, params = self.sql_with_params(using=using, **values)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _same(param: Any, value: Any) -> bool:
    return type(param) is type(value) and param == value
