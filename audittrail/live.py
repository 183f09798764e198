"""Wake-ups for streams and waits (live.md §3–4): one hub per process, and the per-client slot count.

What happened is always read from audit_events; the hub only says *when* to read again:
- on PostgreSQL, one connection per process LISTENs on the channel append_event NOTIFYs at commit,
  so an event committed by any worker of any host wakes the streams of its workspace at once;
- on every database, one thread per process reads the chain heads (`workspaces.audit_seq`) of the
  workspaces someone follows every AUDITTRAIL_STREAM_POLL_SECONDS, and wakes those whose head
  moved: a lost notification (or SQLite, which has none) costs that interval at most;
- every AUDITTRAIL_STREAM_EXPIRY_SECONDS the same thread expires the due rows of those workspaces,
  so a TTL that passes shows on the streams as an `expired` event without anyone reading the list.

Streams and waits hold no database connection while they wait: only the hub's two threads use one
(the listener its own, the poller a pooled one for a moment). Both threads stop when nobody follows.
Under gunicorn's gevent workers the threads are greenlets (the standard library is patched), and
psycopg cooperates with gevent by itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import defaultdict

from flask import Flask
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from audittrail.extensions import db
from audittrail.extensions import release_session
from audittrail.models import Workspace
from audittrail.services.audit import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

_IDLE_STOP_SECONDS = 5.0


class Subscription:
    """One stream's or wait's interest in one workspace: `wait()` returns when it may have news."""

    def __init__(self, hub: LiveHub, workspace_id: str):
        self.hub = hub
        self.workspace_id = workspace_id
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when woken. Read the table after it returns."""
        woke = self._event.wait(max(0.0, timeout))
        self._event.clear()
        return woke

    def close(self) -> None:
        self.hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Flight:
    """One shared read: the first caller does it, the others wait for its value."""

    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error: BaseException | None = None
        self.leader = False
        self._claimed = False
        self._lock = threading.Lock()

    def leader_claimed(self) -> bool:
        """True for exactly one caller: the one who must read."""
        with self._lock:
            if self.leader and not self._claimed:
                self._claimed = True
                return True
            return False


class LiveHub:
    """The process's subscriptions by workspace, and the threads that wake them."""

    def __init__(self, app: Flask):
        self.app = app
        self.poll_seconds = app.config["AUDITTRAIL_STREAM_POLL_SECONDS"]
        self.expiry_seconds = app.config["AUDITTRAIL_STREAM_EXPIRY_SECONDS"]
        self.listen = app.config["AUDITTRAIL_STREAM_LISTEN"] and app.config["SQLALCHEMY_DATABASE_URI"].startswith(
            "postgresql"
        )
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._heads: dict[str, int] = {}
        # Rendered stream batches, shared by the streams of one workspace and caller (a wake-up
        # sends every stream of the workspace to read the same new events). An entry belongs to the
        # workspace's generation, which every wake-up moves *before* it wakes anyone: a woken stream
        # never gets a batch read before the change it was woken for.
        self._generation: dict[str, int] = defaultdict(int)
        self._batches: dict[tuple, tuple[int, object]] = {}
        self._poller: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self.listening = False  # whether the LISTEN connection is up (for tests and /readyz-like checks)

    def stop(self, timeout: float = 5.0) -> None:
        """End the threads and wait for them: after this, none holds a pooled connection.

        For whoever disposes of the engine next (a test's app teardown): a poll in flight would
        otherwise hand its connection back to the disposed pool, where nothing closes it.
        """
        self._stopping.set()
        for thread in (self._poller, self._listener):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, workspace_id: str) -> Subscription:
        subscription = Subscription(self, workspace_id)
        with self._lock:
            self._subscriptions[workspace_id].add(subscription)
            self._start_threads()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            followers = self._subscriptions.get(subscription.workspace_id)
            if followers is not None:
                followers.discard(subscription)
                if not followers:
                    del self._subscriptions[subscription.workspace_id]
                    self._heads.pop(subscription.workspace_id, None)

    def wake(self, workspace_id: str) -> None:
        with self._lock:
            self._generation[workspace_id] += 1
            followers = list(self._subscriptions.get(workspace_id, ()))
        for subscription in followers:
            subscription.wake()

    def wake_all(self) -> None:
        with self._lock:
            for workspace_id in self._subscriptions:
                self._generation[workspace_id] += 1
            followers = [s for group in self._subscriptions.values() for s in group]
        for subscription in followers:
            subscription.wake()

    _MAX_BATCHES = 512

    def shared_batch(self, workspace_id: str, key: tuple, read):
        """`read()`'s result for `key`, shared with the other streams that ask within one generation.

        One read at a time per key (the others wait for it): a wake-up sends every stream of the
        workspace to read at once, and they must not all take a pooled connection together.
        """
        full_key = (workspace_id, *key)
        with self._lock:
            generation = self._generation[workspace_id]
            found = self._batches.get(full_key)
            if found is not None and found[0] == generation:
                entry = found[1]
            else:
                entry = _Flight()
                if len(self._batches) >= self._MAX_BATCHES:
                    self._batches.clear()
                self._batches[full_key] = (generation, entry)
                entry.leader = True
        if not entry.leader_claimed():
            if entry.done.wait(30) and entry.error is None:
                return entry.value
            return read()  # the leader failed (the database away): read for ourselves
        try:
            entry.value = read()
        except BaseException as error:
            entry.error = error
            with self._lock:
                if self._batches.get(full_key, (None, None))[1] is entry:
                    del self._batches[full_key]
            raise
        finally:
            entry.done.set()
        return entry.value

    def _followed(self) -> list[str]:
        with self._lock:
            return list(self._subscriptions)

    # ------------------------------------------------------------------ threads

    def _start_threads(self) -> None:
        # Called with the lock held.
        if self._stopping.is_set():
            return
        if self._poller is None or not self._poller.is_alive():
            self._poller = threading.Thread(target=self._poll_loop, name="audittrail-live-poll", daemon=True)
            self._poller.start()
        if self.listen and (self._listener is None or not self._listener.is_alive()):
            self._listener = threading.Thread(target=self._listen_loop, name="audittrail-live-listen", daemon=True)
            self._listener.start()

    def _idle_for(self, since: float | None) -> tuple[bool, float | None]:
        """(stop now?, idle-since) — a thread stops after a few seconds with nobody following."""
        if self._followed():
            return False, None
        since = since or time.monotonic()
        return time.monotonic() - since > _IDLE_STOP_SECONDS, since

    def _poll_loop(self) -> None:
        idle_since = None
        last_sweep = time.monotonic()
        while not self._stopping.wait(self.poll_seconds):
            stop, idle_since = self._idle_for(idle_since)
            if stop:
                with self._lock:
                    if not self._subscriptions:
                        self._poller = None
                        return
                continue
            workspaces = self._followed()
            if not workspaces:
                continue
            with self.app.app_context():
                try:
                    self._poll_heads(workspaces)
                    if time.monotonic() - last_sweep >= self.expiry_seconds:
                        last_sweep = time.monotonic()
                        self._expire(workspaces)
                except SQLAlchemyError as error:
                    # The database is away: the streams find out themselves; try again next time.
                    log.warning("live: could not read the chain heads: %s", error.__class__.__name__)
                finally:
                    release_session()

    def _poll_heads(self, workspaces: list[str]) -> None:
        rows = db.session.execute(select(Workspace.id, Workspace.audit_seq).where(Workspace.id.in_(workspaces))).all()
        db.session.rollback()  # end the read: hold no connection between polls
        for workspace_id, head in rows:
            with self._lock:
                changed = self._heads.get(workspace_id) != head
                if changed and workspace_id in self._subscriptions:
                    self._heads[workspace_id] = head
            if changed:
                self.wake(workspace_id)

    def _expire(self, workspaces: list[str]) -> None:
        from audittrail.services.expiry import expire_due

        clock = self.app.config.get("AUDITTRAIL_CLOCK")
        moment = clock() if clock else _utcnow()
        for workspace_id in workspaces:
            expire_due(moment, workspace_id=workspace_id, request_id="live-expiry")

    def _listen_loop(self) -> None:
        import psycopg

        with self.app.app_context():
            url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        idle_since = None
        backoff = 0.5
        while not self._stopping.is_set():
            stop, idle_since = self._idle_for(idle_since)
            if stop:
                with self._lock:
                    if not self._subscriptions:
                        self._listener = None
                        return
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening = True
                    backoff = 0.5
                    # Anything committed while we were not listening is found by reading again now.
                    self.wake_all()
                    while True:
                        for notification in connection.notifies(timeout=1.0):
                            self.wake(notification.payload)
                        stop, idle_since = self._idle_for(idle_since)
                        if stop or self._stopping.is_set():
                            break
            except psycopg.Error as error:
                log.warning("live: LISTEN connection lost (%s); polling covers it", error.__class__.__name__)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 8.0)
            finally:
                self.listening = False


def _utcnow():
    from datetime import UTC
    from datetime import datetime

    return datetime.now(UTC)


# ---------------------------------------------------------------------- slots per client


class StreamSlots:
    """At most `limit` open streams and waits per client (live.md §3), across every process.

    With a Redis rate-limit storage the slots are leases in one sorted set per client, so a worker
    that dies frees its slots when their lease runs out; otherwise (development, tests) they are
    counted in this process. If Redis cannot be reached the count falls back to this process.
    """

    LEASE_SECONDS = 90.0

    def __init__(self, limit: int, storage_uri: str):
        self.limit = limit
        self._lock = threading.Lock()
        self._local: dict[str, set[str]] = defaultdict(set)
        self._redis = None
        if storage_uri.startswith(("redis://", "rediss://", "redis+unix://")):
            import redis

            self._redis = redis.Redis.from_url(
                storage_uri.replace("redis+unix://", "unix://"), socket_connect_timeout=1, socket_timeout=1
            )

    @staticmethod
    def _key(client: str) -> str:
        return f"audittrail:streams:{client}"

    def acquire(self, client: str) -> str | None:
        """A slot's token, or None when the client already holds `limit`."""
        token = uuid.uuid4().hex
        if self._redis is not None:
            try:
                return self._acquire_shared(client, token)
            except Exception as error:  # noqa: BLE001 — Redis away: count in this process, never fail
                log.warning("live: stream slots storage unreachable (%s); counting per process", error)
        with self._lock:
            held = self._local[client]
            if len(held) >= self.limit:
                return None
            held.add(token)
        return token

    def _acquire_shared(self, client: str, token: str) -> str | None:
        key, now = self._key(client), time.time()
        pipe = self._redis.pipeline()
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {token: now + self.LEASE_SECONDS})
        pipe.zcard(key)
        pipe.expire(key, int(self.LEASE_SECONDS) + 1)
        held = pipe.execute()[2]
        if held > self.limit:
            self._redis.zrem(key, token)
            return None
        return token

    def refresh(self, client: str, token: str) -> None:
        """Extend a long stream's lease (called at each keep-alive)."""
        if self._redis is None:
            return
        try:
            key = self._key(client)
            pipe = self._redis.pipeline()
            pipe.zadd(key, {token: time.time() + self.LEASE_SECONDS}, xx=True)
            pipe.expire(key, int(self.LEASE_SECONDS) + 1)
            pipe.execute()
        except Exception:  # noqa: BLE001, S110 — a missed refresh only shortens the lease
            return

    def release(self, client: str, token: str) -> None:
        with self._lock:
            held = self._local.get(client)
            if held is not None and token in held:
                held.discard(token)
                if not held:
                    del self._local[client]
                return
        if self._redis is not None:
            # Redis away: the lease runs out by itself.
            with contextlib.suppress(Exception):
                self._redis.zrem(self._key(client), token)


def init_app(app: Flask) -> None:
    """Attach this process's hub and slot counter to the app."""
    app.extensions["audittrail.live"] = LiveHub(app)
    app.extensions["audittrail.stream_slots"] = StreamSlots(
        app.config["AUDITTRAIL_STREAM_MAX_PER_CLIENT"], app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    )


def hub() -> LiveHub:
    return current_app.extensions["audittrail.live"]


def slots() -> StreamSlots:
    return current_app.extensions["audittrail.stream_slots"]
