"""Retention: how long finished executions are kept (the policy; pure). Deleting them in batches is zart.pruning."""
