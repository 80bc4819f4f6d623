"""Lookups the ORM lacks, usable as expressions in filters and in index conditions."""

from typing import Any

from django.db.models import Lookup


class IsNotDistinctFrom(Lookup):
    """`lhs IS NOT DISTINCT FROM rhs`: equality (NULL matching NULL) that no index's key answers.

    For a read that must reach its rows through a partial index whose condition says the same,
    and never through an index on the column: `IsNotDistinctFrom(F("state"), "VALIDATED")` in
    both the index's condition and the read is implied by the one, and unusable as a key of
    any other. With `state = 'VALIDATED'`, statistics taken while no order was unpaid made the
    index on (state, updated_at) look as cheap as the client's own, and the per-client cap read
    every unpaid order through it (reservations.check_units_held). PostgreSQL proves the
    condition only for a constant; a prepared statement's value counts as one under
    `plan_cache_mode` force_custom_plan (config/settings/database.py). SQLite 3.39+ writes it
    the same way.
    """

    lookup_name = "is_not_distinct_from"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IS NOT DISTINCT FROM {rhs}", [*lhs_params, *rhs_params]
