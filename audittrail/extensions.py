"""Flask extensions, created unbound and attached in create_app."""

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()


def release_session() -> None:
    """End this thread's session, even when the database went away after its last statement.

    Closing a session rolls its transaction back on the connection. With the server gone (a
    restart), that rollback raises although nothing is left to undo; SQLAlchemy has by then
    invalidated the connection, so the second close only forgets it. The pool opens a new one.
    """
    try:
        db.session.remove()
    except (OperationalError, InterfaceError):
        db.session.remove()


def init_session_release(app) -> None:
    """Release each request's session with `release_session`.

    Registered after flask-sqlalchemy's own teardown, so it runs first (teardowns run in reverse),
    and that one finds nothing left to close. An error there would escape the app: the server's
    own HTML 500, for a request whose answer was already made.
    """
    app.teardown_appcontext(lambda _error: release_session())
