"""Session-wide real PostgreSQL and Redis, migrated once; workers are started per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Environment, SharedProcesses, Worker, assert_nothing_stranded, stop_together
from zart.localservices import LocalPgBouncer, LocalPostgres, LocalRedis, free_port
from zart.migrate import upgrade
from zart.service import ZartService
from zart.store import db

pytest_plugins = ["zart.testing"]

PGBOUNCER_POOL_SIZE = 20
SHARED_PROCESSES = pytest.StashKey[SharedProcesses]()


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zart-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(services_dir: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(services_dir / "pg", free_port())
    server.start()
    yield server
    db.dispose_all()
    server.stop(mode="immediate")


@pytest.fixture(scope="session")
def pgbouncer(services_dir: Path, postgres: LocalPostgres) -> Iterator[LocalPgBouncer]:
    """PgBouncer in transaction-pooling mode in front of the session's Postgres, 20 server connections a
    database (started only by the tests that ask for it)."""
    bouncer = LocalPgBouncer(services_dir / "pgbouncer", free_port(), postgres, pool_size=PGBOUNCER_POOL_SIZE)
    bouncer.start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session")
def redis_server(services_dir: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(services_dir / "redis", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def env(postgres: LocalPostgres, redis_server: LocalRedis) -> Environment:
    return prepared_environment(postgres, redis_server)


def prepared_environment(postgres: LocalPostgres, redis_server: LocalRedis) -> Environment:
    """The services migrated, the test workflows registered and recorded in the catalog."""
    upgrade(postgres.url)
    environment = Environment(database_url=postgres.url, broker_url=redis_server.url)
    import tests.flow_workflows  # noqa: F401
    import tests.liveness_workflows  # noqa: F401
    import tests.reliability_workflows  # noqa: F401
    import tests.workflows  # noqa: F401  (registers the test tasks, as a worker would)
    from zart.dispatch import record_catalog

    record_catalog(environment.settings())
    return environment


@pytest.fixture(scope="session")
def zart_database_url(env: Environment) -> str:
    """zart.testing's harness runs against the session's Postgres (instead of starting one of its own)."""
    return env.database_url


@pytest.fixture()
def service(env: Environment) -> ZartService:
    """A service as a client process would use it: it knows task names only from the catalog."""
    from zart.registry import Registry

    return ZartService(env.settings(), registry=Registry())


@pytest.fixture()
def log_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o777)
    return tmp_path


@pytest.fixture()
def start_worker(env: Environment, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(concurrency: int = 2, ready: bool = True, **overrides: str) -> Worker:
        worker = Worker(env, tmp_path, concurrency, **overrides)
        workers.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    stop_together(workers)


@pytest.fixture(scope="session")
def shared_processes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedProcesses]:
    directory = tmp_path_factory.mktemp("shared-workers")
    directory.chmod(0o777)
    shared = SharedProcesses(directory)
    request.session.stash[SHARED_PROCESSES] = shared
    yield shared
    shared.keep_only(())


@pytest.fixture(autouse=True)
def _shared_processes_only_when_asked(request: pytest.FixtureRequest) -> None:
    """Stop the shared processes this test did not ask for (it counts on owning every worker it sees)."""
    shared = request.session.stash.get(SHARED_PROCESSES, None)
    if shared is not None:
        shared.keep_only(request.fixturenames)


@pytest.fixture()
def shared_worker(env: Environment, shared_processes: SharedProcesses) -> Callable[..., Worker]:
    """`shared_worker(concurrency, **overrides)`: a running `zart worker` so configured, which earlier tests may
    have used too (see SharedProcesses); one at a time, restarted when a test asks for another configuration."""

    def get(concurrency: int = 2, **overrides: str) -> Worker:
        def start(directory: Path) -> Worker:
            return Worker(env, directory, concurrency, **overrides).wait_ready()

        return shared_processes.get("shared_worker", (env, concurrency, overrides), start)

    return get


@pytest.fixture()
def worker(shared_worker: Callable[..., Worker]) -> Worker:
    """A running `zart worker` (concurrency 2) that earlier tests may have used too (see SharedProcesses)."""
    return shared_worker()


@pytest.fixture()
def unique() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def nothing_stranded(env: Environment) -> Iterator[None]:
    """Asserts, after the test (and its workers) finished, that none of its executions was left stranded."""
    from zart.store import db, sweeps

    with db.autocommit(env.database_url) as conn:
        started = sweeps.database_now(conn)
    yield
    assert_nothing_stranded(env.database_url, created_since=started)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked release_only run in `make reliability` (ZART_RELEASE=1), not in `make test`."""
    if os.environ.get("ZART_RELEASE") == "1":
        return
    skip = pytest.mark.skip(reason="release_only: run with `make reliability`")
    for item in items:
        if item.get_closest_marker("release_only"):
            item.add_marker(skip)
