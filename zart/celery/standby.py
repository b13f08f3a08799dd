"""Standing by: a worker that will look for ready executions again takes a new one without its doorbell.

A worker that takes ready executions itself offers a standby on each queue it consumes while it runs an
execution and looks for the next: an entry in the queue's Redis sorted set, scored by when it lapses. A new,
ready execution takes a standby instead of ringing a doorbell, and the worker that offered it looks again. So a
busy fleet pulls new executions through the workers already running, and an idle worker is rung (a Celery task:
received, handed to the pool, acknowledged) only when no running one stands by.

Nothing is stranded by it: the execution's row is committed before its standby is taken, and a worker leaves
only by withdrawing its standby; when the standby is gone (taken, or lapsed) it looks once more first, and that
look comes after the taker's commit. A take records the execution that took the standby, and a worker that
leaves rings the doorbell of each such execution it did not claim itself: one its looks never find (a task it
lacks, in a rolling deploy) or had no time left to reach still goes to a worker that can run it. A standby lasts
ZART_STANDBY_SECONDS: a longer run withdraws it (and rings for its takers), so a long run never keeps a new
execution from an idle worker. A worker killed while standing by leaves its standby behind until it lapses in
Redis: an execution that takes it meanwhile waits for the sweeper to ring it, as for a lost message.

Each worker also says which tasks it runs, as its kind on each queue it consumes (a digest naming a set of
tasks, renewed while it sweeps): a rolling deploy has two kinds on a queue. A new execution takes a standby or
is left to a queued doorbell only when every kind runs its task, and a worker lacking a task hands its execution
on to a running one that has it (see `pass_on`) instead of parking it for a worker that may already be idle.
Nothing here is ever the truth: Postgres is.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from celery import Celery

from zart.celery.names import RUN_TASK

log = logging.getLogger(__name__)

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# ARGV: the standby's token, how long it stands
_OFFER = f"""{_NOW}
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
    redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[2])) + 1)
end
return 1
"""

# KEYS: the queues' standbys, then the standby's takers. {1, no ids} when the standby was still there on every
# queue; {0, the ids of the executions that took it} when it was gone (taken, or lapsed: then no ids), and the
# takers read are forgotten in the same step, so each is handed to the worker once.
_WITHDRAW = """
local all = 1
for i = 1, #KEYS - 1 do
    if redis.call('ZREM', KEYS[i], ARGV[1]) == 0 then all = 0 end
end
local takers = redis.call('LRANGE', KEYS[#KEYS], 0, -1)
redis.call('DEL', KEYS[#KEYS])
table.insert(takers, 1, all)
return takers
"""

# KEYS: the queue's standbys, its self-claim marker, the queue, its kinds. ARGV: the execution, the prefix of a
# standby's takers key, how long those outlive the standby, the prefix of the queue's kind keys, the execution's
# task ('' when unknown). 'ring' at once unless every kind of worker consuming the queue runs the task: a worker
# lacking it would stand by or take a queued doorbell, skip the execution in its looks, and ring for it late or
# never (a kind whose key lapsed, no worker of it having said so lately, is forgotten). Then 'standby' (a worker
# will look for the execution, or ring its doorbell when it leaves: the execution is recorded among the
# standby's takers until the standby would have lapsed, and a little longer), 'queued' (a doorbell waits in the
# queue: its taker looks), or 'ring'. ARGV[6], the doorbell's task name: the newest message, taken last, must be
# a doorbell to run at once; a remote step's callback (also sent to zart's queue) or a doorbell with a countdown
# (held by its taker until its time) makes no look when it is taken, and neither does anything else routed there.
_TAKE = f"""{_NOW}
if redis.call('EXISTS', KEYS[2]) == 0 then return 'ring' end
if ARGV[5] ~= '' then
    for _, kind in ipairs(redis.call('SMEMBERS', KEYS[4])) do
        local tasks = ARGV[4] .. kind
        if redis.call('EXISTS', tasks) == 0 then
            redis.call('SREM', KEYS[4], kind)
        elseif redis.call('SISMEMBER', tasks, ARGV[5]) == 0 then
            return 'ring'
        end
    end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local standing = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if standing[1] then
    redis.call('ZREM', KEYS[1], standing[1])
    local takers = ARGV[2] .. standing[1]
    redis.call('RPUSH', takers, ARGV[1])
    redis.call('EXPIRE', takers, math.ceil(tonumber(standing[2]) - now) + tonumber(ARGV[3]))
    return 'standby'
end
local ok, newest = pcall(cjson.decode, redis.call('LINDEX', KEYS[3], 0) or '')
if not ok or type(newest) ~= 'table' or type(newest.headers) ~= 'table' or newest.headers.task ~= ARGV[6]
        or (newest.headers.eta ~= nil and newest.headers.eta ~= cjson.null) then
    return 'ring'
end
return 'queued'
"""

# KEYS: the queue's kinds, the execution's pass-on mark. ARGV: the prefix of the queue's kind keys, the task, how
# long the mark lasts. 1 when a worker consuming the queue said lately that it runs the task and the execution
# was not passed on within the mark's life (the mark is set), else 0.
_PASS_ON = """
for _, kind in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if redis.call('SISMEMBER', ARGV[1] .. kind, ARGV[2]) == 1 then
        if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 1 end
        return 0
    end
end
return 0
"""


def standby_key(queue: str) -> str:
    return f"zart:{queue}:standby"


TAKERS_PREFIX = "zart:standby:taken:"
# how long a standby's takers outlive it: its worker reads them when it withdraws, at the latest at 3/4 of the
# standby's life (see _Lapses); a killed worker's go away with it
TAKERS_GRACE_SECONDS = 30


def takers_key(token: str) -> str:
    """The list of executions that took the standby of that token."""
    return TAKERS_PREFIX + token


def kinds_key(queue: str) -> str:
    """The kinds of worker consuming `queue`: a set of digests, each naming the set of tasks such a worker runs
    (see `kind_key`). A rolling deploy has two kinds; a fleet running one version of the code, one."""
    return f"zart:{queue}:kinds"


def kind_prefix(queue: str) -> str:
    return f"zart:{queue}:kind:"


def kind_key(queue: str, digest: str) -> str:
    """The tasks a kind of worker consuming `queue` runs; it lapses unless a worker of that kind renews it."""
    return kind_prefix(queue) + digest


def kind_digest(tasks: Iterable[str]) -> str:
    """The name of a kind of worker: a digest of the tasks it runs."""
    return hashlib.sha1("\n".join(sorted(set(tasks))).encode()).hexdigest()[:16]


PASSED_ON_PREFIX = "zart:passed-on:"
# how long an execution passed on by a worker lacking its task is not passed on again (another such worker then
# gives it back to wait, as before): the shortest such wait, so it costs at most two claims per wait
PASS_ON_SECONDS = 5


class _Scripts:
    """One process's Redis client on the app's broker, with the scripts registered on it."""

    def __init__(self, app: Celery) -> None:
        self.connection = app.connection_for_write()
        channel = self.connection.default_channel
        client = channel.Client(connection_pool=channel.pool)
        self.offer = client.register_script(_OFFER)
        self.withdraw = client.register_script(_WITHDRAW)
        self.take = client.register_script(_TAKE)
        self.pass_on = client.register_script(_PASS_ON)


_scripts: dict[tuple[int, int], _Scripts | None] = {}
_lock = threading.Lock()


def _scripts_for(app: Celery) -> _Scripts | None:
    """None on a broker other than Redis (nothing stands by there: every execution gets its doorbell)."""
    key = (os.getpid(), id(app))
    if key not in _scripts:
        with _lock:
            if key not in _scripts:
                connection = app.connection_for_write()
                try:
                    redis = connection.transport.driver_type == "redis"
                finally:
                    connection.release()
                _scripts[key] = _Scripts(app) if redis else None
    return _scripts[key]


class Standby:
    """One worker task's standby on its queues. `withdraw` says whether the worker may leave without looking
    again; after a failed one the standby is gone (the caller offers it again if it goes on looking).

    It remembers the executions that took it until the worker says it claimed them (`claimed`): `leave` rings
    `ring(execution_id)` for each one left that `still_pending` says nobody claimed, since a look skips what
    this worker cannot run. A standby found gone with no taker named (it lapsed, or a client that records none
    took it) gets `ring_queue(queue)` instead.

    A run that outlasts its standby withdraws it from a background thread (see _Lapses), ringing for the
    executions that took it meanwhile: a long run never keeps a new execution from an idle worker."""

    def __init__(
        self,
        app: Celery,
        queues: tuple[str, ...],
        ring: Callable[[str], object],
        ring_queue: Callable[[str], object],
        seconds: float,
        still_pending: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self._app = app
        self._seconds = seconds
        self._keys = [standby_key(queue) for queue in queues]
        self._queues = queues
        self._ring = ring
        self._ring_queue = ring_queue
        self._still_pending = still_pending
        self._token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._takers: set[str] = set()  # took the standby, not claimed here yet
        self._claimed: set[str] = set()  # claimed here while standing by: a taker read later needs no doorbell
        self.held = False
        self.offers = 0

    def offer(self) -> None:
        scripts = _scripts_for(self._app)
        if scripts is None or not self._keys:
            return
        try:
            scripts.offer(keys=self._keys, args=[self._token, self._seconds])
        except Exception as exc:  # new executions then get their doorbells
            log.info("could not stand by on the broker: %s", exc)
            return
        with self._lock:
            self.held = True
            self.offers += 1
            offer = self.offers
        _lapses().add(self, offer, time.monotonic() + self._seconds * LAPSE_SHARE)

    def claimed(self, execution_id: str) -> None:
        """This worker claimed the execution itself: if it took the standby, it needs no doorbell."""
        with self._lock:
            self._claimed.add(execution_id)
            self._takers.discard(execution_id)

    def withdraw(self) -> bool:
        return self._withdraw() == "kept"

    def leave(self) -> None:
        """Stop standing by without looking again: each execution that took the standby and was not claimed here
        gets its doorbell; a standby found gone with no taker named also gets a doorbell on each of the queues,
        which names none (see Publisher.ring_queue)."""
        gone = self._withdraw() == "gone"
        with self._lock:
            takers, self._takers = sorted(self._takers), set()
        for execution_id in self._unclaimed(takers):
            self._ring(execution_id)
        if gone:
            for queue in self._queues:
                self._ring_queue(queue)

    def _unclaimed(self, takers: list[str]) -> list[str]:
        """The takers nobody claimed yet: in a busy fleet another worker's look usually claims a taker first,
        and its doorbell would only cost a claim that takes nothing. All of them when the store cannot say."""
        if not takers or self._still_pending is None:
            return takers
        try:
            return self._still_pending(takers)
        except Exception as exc:  # ring them all: a doorbell too many costs a claim that takes nothing
            log.info("could not read whether the standby's takers were claimed: %s", exc)
            return takers

    def _withdraw(self) -> str:
        """'kept' (still there, or not held), 'taken' (its takers are now in self._takers) or 'gone' (taken or
        lapsed with no taker named, or unknown: the broker failed)."""
        with self._lock:
            if not self.held:
                return "kept"
            self.held = False
        scripts = _scripts_for(self._app)
        if scripts is None:
            return "kept"
        try:
            answer = scripts.withdraw(keys=[*self._keys, takers_key(self._token)], args=[self._token])
        except Exception as exc:  # its takers are unknown: look again, then ring the queues (or the sweeper will)
            log.info("could not withdraw the standby: %s", exc)
            return "gone"
        there, takers = int(answer[0]), {as_text(taker) for taker in answer[1:]}
        with self._lock:
            self._takers |= takers - self._claimed
        if takers:
            return "taken"
        return "kept" if there else "gone"

    def lapse(self, offer: int) -> None:
        """The run is still going, and has not offered again since `offer`: leave."""
        if self.offers == offer:
            self.leave()


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (a client may answer bytes or str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


# a standby is withdrawn this far into its life, before Redis lets it lapse
LAPSE_SHARE = 0.75


class _Lapses:
    """One thread per process that withdraws the standbys of runs that outlast them: it sleeps until the
    earliest one is due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Standby, int]] = []  # a heap: (when, order added, standby, its offer)
        self._added = itertools.count()
        self._wake = threading.Condition()
        threading.Thread(target=self._loop, name="zart-standby", daemon=True).start()

    def add(self, standby: Standby, offer: int, at: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (at, next(self._added), standby, offer))
            if self._due[0][2] is standby:
                self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._due:
                    self._wake.wait()
                at, _, standby, offer = self._due[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._due)
            if standby.held:
                try:
                    standby.lapse(offer)
                except Exception:  # the worker's own withdrawal, or the sweeper, covers it
                    log.warning("could not withdraw a lapsing standby", exc_info=True)


_lapse_threads: dict[int, _Lapses] = {}


def _lapses() -> _Lapses:
    """This process's thread (a forked pool child starts its own: threads do not survive a fork)."""
    pid = os.getpid()
    if pid not in _lapse_threads:
        with _lock:
            if pid not in _lapse_threads:
                _lapse_threads[pid] = _Lapses()
    return _lapse_threads[pid]


def take(app: Celery, queue: str, marker: str, execution_id: str, task: str | None = None) -> str:
    """For a new, ready `execution_id` of `queue`: 'standby' (a running worker will take it, or ring its doorbell
    when it leaves), 'queued' (a doorbell waits in the queue) or 'ring'. Only when the queue's self-claim `marker`
    says its workers look themselves, and every kind of worker consuming the queue runs `task` (the look of a
    worker lacking it skips the execution: a rolling deploy's older workers). A queued doorbell counts only
    when it is run as soon as it is taken (the newest message in the queue; a callback or a countdown is not
    one)."""
    scripts = _scripts_for(app)
    if scripts is None:
        return "ring"
    answer = scripts.take(
        keys=[standby_key(queue), marker, queue, kinds_key(queue)],
        args=[execution_id, TAKERS_PREFIX, TAKERS_GRACE_SECONDS, kind_prefix(queue), task or "", RUN_TASK],
    )
    return as_text(answer)


def pass_on(app: Celery, queue: str, task: str, execution_id: str) -> bool:
    """Whether a worker that lacks `task` should hand `execution_id` back as ready and ring its doorbell again:
    a worker consuming `queue` said lately that it runs the task, and the execution was not passed on in the
    last PASS_ON_SECONDS (so two workers lacking it never toss it back and forth). False on another broker."""
    scripts = _scripts_for(app)
    if scripts is None:
        return False
    answer = scripts.pass_on(
        keys=[kinds_key(queue), PASSED_ON_PREFIX + execution_id], args=[kind_prefix(queue), task, PASS_ON_SECONDS]
    )
    return bool(int(answer))
