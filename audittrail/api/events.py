"""The event feed and its stream (live.md §2–3): GET /api/v1/events, JSON pages or Server-Sent Events."""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import contextmanager

from flask import current_app
from flask import jsonify
from flask import request
from flask import stream_with_context
from sqlalchemy.exc import SQLAlchemyError

from audittrail import live
from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import clock_now
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.auth import rate_limit_client
from audittrail.domain import Scope
from audittrail.errors import ApiError
from audittrail.extensions import release_session
from audittrail.schemas import MAX_SEQ
from audittrail.schemas import FeedItemSchema
from audittrail.schemas import FeedQuerySchema
from audittrail.schemas import FeedSchema
from audittrail.services import feed
from audittrail.signing import current_keyring

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
RETRY_MILLISECONDS = 3000
_DIGITS = re.compile(r"^[0-9]{1,10}$")
_LAST_EVENT_ID_HEADER = {
    "Last-Event-ID": {
        "description": "The stream resumes after this seq (EventSource sends it when it reconnects).",
        "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
        "required": False,
    }
}


def wants_stream() -> bool:
    """Whether the caller asked for the stream rather than a JSON page."""
    accept = request.accept_mimetypes
    named = any(mimetype == EVENT_STREAM and quality > 0 for mimetype, quality in accept)
    return named and accept.best_match([EVENT_STREAM, "application/json"]) == EVENT_STREAM


@bp.get("/events")
@operation(
    scope=Scope.READ,
    query=FeedQuerySchema,
    responses={200: FeedSchema},
    errors=["unauthorized", "forbidden", "validation_error", "rate_limited"],
    headers=_LAST_EVENT_ID_HEADER,
    tags=["events"],
)
def list_events(query):
    """The workspace's audit events after a seq, oldest first; `Accept: text/event-stream` streams them live.

    The stream sends `retry: 3000` first, then each event as `id: <seq>`, `event: <type>` and
    `data: <the item as JSON>`, with `: keep-alive` comments; it ends after
    AUDITTRAIL_STREAM_MAX_SECONDS and resumes from `Last-Event-ID`. At most
    AUDITTRAIL_STREAM_MAX_PER_CLIENT streams and waits per client (429 beyond).
    """
    if wants_stream():
        return _stream(query)
    after = query.get("after", 0)
    items = feed.read_events(
        current_principal().actor,
        now(),
        after=after,
        limit=query["limit"],
        action_id=query.get("action_id"),
        keyring=current_keyring(),
    )
    return jsonify(FeedSchema().dump({"items": items, "next_after": items[-1].event.seq if items else after}))


def _last_event_id() -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return None
    if not _DIGITS.match(raw) or int(raw) > MAX_SEQ:
        raise ApiError(
            "validation_error",
            "Last-Event-ID must be the seq of an event this stream sent.",
            {"Last-Event-ID": ["Must be a non-negative integer (an event's `id:`)."]},
        )
    return int(raw)


@contextmanager
def stream_slot():
    """Hold one of the client's stream-and-wait slots for the block; ApiError(rate_limited) when none is left."""
    client = rate_limit_client()
    slots = live.slots()
    token = slots.acquire(client)
    if token is None:
        raise ApiError(
            "rate_limited",
            f"At most {slots.limit} streams and waits may be open per client; close one first.",
            {"limit": slots.limit},
            headers={"Retry-After": "5"},
        )
    try:
        yield lambda: slots.refresh(client, token)
    finally:
        slots.release(client, token)


def _stream(query):
    actor = current_principal().actor
    action_id = query.get("action_id")
    feed.check_action_id(action_id)
    resume_after = _last_event_id()
    start = resume_after if resume_after is not None else query.get("after")
    config = current_app.config
    max_seconds = config["AUDITTRAIL_STREAM_MAX_SECONDS"]
    keepalive_seconds = config["AUDITTRAIL_STREAM_KEEPALIVE_SECONDS"]
    poll_seconds = config["AUDITTRAIL_STREAM_POLL_SECONDS"]

    slot = stream_slot()
    refresh_slot = slot.__enter__()
    try:
        # Subscribe before reading where to start: nothing committed from here on can be missed.
        subscription = live.hub().subscribe(actor.workspace_id)
        if start is None:
            start = feed.head(actor)
    except BaseException as error:
        slot.__exit__(type(error), error, error.__traceback__)
        raise
    finally:
        release_session()  # an idle stream holds no database connection

    schema = FeedItemSchema()
    closed = []

    def release():
        # Run by the generator's end and by the server closing the answer, whichever comes first
        # (a client gone before the first chunk never starts the generator).
        if not closed:
            closed.append(True)
            subscription.close()
            slot.__exit__(None, None, None)

    hub = live.hub()
    # Who sees the batch: `action` (its allowed_transitions) is per caller, so batches are shared
    # only between streams of the same person with the same role and scopes.
    caller = actor.caller
    keyring = current_keyring()

    def read_batch(after):
        items = feed.read_events(
            actor, clock_now(), after=after, limit=feed.MAX_PAGE, action_id=action_id, expire=False, keyring=keyring
        )
        text = "".join(_frame(item.event.seq, item.event.type, schema.dump(item)) for item in items)
        return len(items), (items[-1].event.seq if items else after), text

    def chunks():
        cursor = start
        born = last_sent = time.monotonic()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            while True:
                count, last_seq, failed = 0, cursor, False

                def read(after=cursor):
                    return read_batch(after)

                try:
                    count, last_seq, text = hub.shared_batch(actor.workspace_id, (cursor, action_id, caller), read)
                except SQLAlchemyError as error:
                    # The database is away (a restart): keep the connection, try again shortly.
                    log.warning("stream: could not read events (%s); retrying", error.__class__.__name__)
                    failed = True
                finally:
                    release_session()
                if count:
                    yield text
                    cursor = last_seq
                    last_sent = time.monotonic()
                moment = time.monotonic()
                if moment - born >= max_seconds:
                    return
                if count == feed.MAX_PAGE:
                    continue
                until_keepalive = keepalive_seconds - (moment - last_sent)
                if until_keepalive <= 0:
                    yield ": keep-alive\n\n"
                    last_sent = moment
                    refresh_slot()
                    continue
                timeout = min(until_keepalive, born + max_seconds - moment)
                if failed:
                    timeout = min(timeout, poll_seconds)
                subscription.wait(timeout)
        finally:
            release()

    response = current_app.response_class(stream_with_context(chunks()), mimetype=EVENT_STREAM)
    response.call_on_close(release)
    response.headers["Cache-Control"] = "no-cache"
    # A reverse proxy (nginx) must pass each event on at once rather than buffer the answer.
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _frame(seq: int, event_type: str, item: dict) -> str:
    # json.dumps escapes every newline inside strings, so the data is always one line.
    return f"id: {seq}\nevent: {event_type}\ndata: {json.dumps(item, separators=(',', ':'))}\n\n"
