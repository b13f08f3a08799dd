"""Retention: how long finished executions are kept (the policy) and deleting them in small batches (prune)."""
