"""Commits that do not wait for the disk, for writes a database crash may lose at no cost.

PostgreSQL makes a transaction durable by flushing its WAL to disk before the commit
returns: on this machine 130 µs more for each commit and 47 µs more of the server's CPU
(`synchronous_commit` on against off, one-row upserts in a loop). A rate limit's count and
the database broker's bookkeeping of a task are not worth that: a count lost in a crash lets
one request more through, a task lost is a nudge the pipeline tick sends again
(docs/DESIGN.md: the order row is the truth, a queue message only a nudge), and a claim or
an acknowledgement lost runs the task again, which every step allows (idempotent).

PostgreSQL's asynchronous commit is set for one transaction with
`set_config('synchronous_commit', 'off', true)`; in a statement run on its own (autocommit)
the setting ends with the statement, and a crash loses at most the last few hundred
milliseconds of such commits, never anything a synchronous commit wrote before or after
them (every later synchronous commit flushes the WAL before it too).

Inside a transaction the setting would make that whole transaction's commit unsynced,
orders included: `commits_unsynced` says whether a statement about to run on `connection`
is its own transaction on PostgreSQL, and only then may it carry UNSYNCED_COMMIT.
"""

# An SQL expression that makes the current transaction's commit asynchronous (its value is
# 'off'); evaluated once per row where it stands, so it stands where the statement writes.
UNSYNCED_COMMIT = "set_config('synchronous_commit', 'off', true)"


def commits_unsynced(connection) -> bool:
    """Whether a statement about to run on `connection` may make its own commit unsynced:
    PostgreSQL, and no transaction of the caller's open around it."""
    return connection.vendor == "postgresql" and connection.get_autocommit() and not connection.in_atomic_block
