"""Logs, metrics and traces of what the engine does: each kind in its own module, all reached from the engine
through `hooks` (a few calls where a run, a step attempt or a wait happens). Metrics and traces cost nothing
unless switched on."""
