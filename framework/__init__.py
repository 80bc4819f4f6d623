"""The framework layer under every app: the task queue, and helpers the admin and the API share.

It imports no app of the shop; the import-linter contract in pyproject.toml keeps it so.
"""
