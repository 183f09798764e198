"""Transaction boundaries: one context manager, owned by whoever opens the outermost one.

    with unit_of_work():
        ...writes...

commits when the block ends and rolls back when it raises. A unit opened inside another joins
it: nothing is committed until the outermost block ends, so a caller that wants several service
calls to be one transaction (a demo workspace, a test) opens a unit around them. A nested unit
that fails dooms the whole one, even if the caller catches the error.

One exception keeps its unit's changes: an error whose class sets `keeps_changes` (a transition
on a row past its TTL flips the row to `expired` and answers 400 `expired`: the flip is the
request's effect, and it is committed).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from audittrail.extensions import db


@dataclass
class _Unit:
    doomed: bool = False


_current: ContextVar[_Unit | None] = ContextVar("unit_of_work", default=None)


def in_unit_of_work() -> bool:
    """Whether a unit is open (so a commit would not happen here)."""
    return _current.get() is not None


@contextmanager
def unit_of_work():
    """Run the block as one transaction, or as part of the enclosing one."""
    outer = _current.get()
    if outer is not None:
        try:
            yield
        except BaseException as error:
            if not getattr(error, "keeps_changes", False):
                outer.doomed = True
            raise
        return
    unit = _Unit()
    token = _current.set(unit)
    try:
        yield
    except BaseException as error:
        if getattr(error, "keeps_changes", False) and not unit.doomed:
            db.session.commit()
        else:
            db.session.rollback()
        raise
    else:
        if unit.doomed:
            db.session.rollback()
            raise RuntimeError("a unit of work inside this one failed; nothing was committed")
        db.session.commit()
    finally:
        _current.reset(token)
