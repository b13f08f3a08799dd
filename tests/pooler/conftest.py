"""zart behind a real PgBouncer in transaction-pooling mode: every worker and the API connect through it.

`env` is overridden for this package: DATABASE_URL points at PgBouncer, ZART_POOLER=transaction, and
ZART_DIRECT_DATABASE_URL at the session's Postgres for what needs a session (the completion LISTEN).
"""

from __future__ import annotations

import pytest

from tests.harness import Environment
from zart.config import mark_pooled
from zart.localservices import LocalPgBouncer, LocalPostgres, LocalRedis


@pytest.fixture(scope="session")
def direct_env(postgres: LocalPostgres, redis_server: LocalRedis) -> Environment:
    """The session's ordinary environment (migrated, catalog recorded), straight to Postgres."""
    from tests.conftest import prepared_environment

    return prepared_environment(postgres, redis_server)


@pytest.fixture(scope="session")
def env(direct_env: Environment, pgbouncer: LocalPgBouncer) -> Environment:
    return pooled_environment(direct_env, pgbouncer)


def pooled_environment(direct: Environment, bouncer: LocalPgBouncer) -> Environment:
    """Its database_url carries the pooled mark, so the test's own direct use of it (zart.store) is pooled too."""
    return Environment(
        database_url=mark_pooled(bouncer.url),
        broker_url=direct.broker_url,
        imports=direct.imports,
        extra={"ZART_POOLER": "transaction", "ZART_DIRECT_DATABASE_URL": direct.database_url},
    )
