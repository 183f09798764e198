"""Where service functions end their transaction, and a way to make several of them one."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from audittrail.extensions import db

_single_transaction: ContextVar[bool] = ContextVar("single_transaction", default=False)


def commit() -> None:
    """Commit, unless inside `single_transaction()`, where the work is only flushed."""
    if _single_transaction.get():
        db.session.flush()
    else:
        db.session.commit()


@contextmanager
def single_transaction():
    """Run several service calls as one transaction: all of them are kept, or none.

    For work with no concurrent writer on the same rows (a new demo workspace): a service
    call that rolls back inside it rolls the whole unit back, and its error propagates.
    """
    if _single_transaction.get():
        yield
        return
    token = _single_transaction.set(True)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _single_transaction.reset(token)
