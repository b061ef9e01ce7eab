"""The process-wide wiring the API and the workers share: settings, state DB, task dispatch.

The API builds one in ``create_app``, a Celery worker when it starts (workers.celery_app),
a CLI command in app.services.local_runs; each from the settings it was given. Task code asks
``get_runtime()`` instead of taking connections as arguments (tasks take ids only). This
module knows nothing of workers: they depend on the services, never the other way round.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import Settings
from app.db.session import make_engine, make_session_factory, session_scope


class Dispatcher(Protocol):
    """Sends a task by name; called only after the request's transaction committed."""

    kind: str

    def send(self, task: str, args: list[Any], countdown: float | None = None) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    dispatcher: Dispatcher | None = None
    # Serialises read-modify-write of the configuration within this process.
    config_lock: threading.Lock = field(default_factory=threading.Lock)
    # Prometheus registries rendered by /metrics, in order.
    registries: list[Any] = field(default_factory=list)

    def session(self):
        return session_scope(self.sessions)

    def send(self, task: str, args: list[Any], countdown: float | None = None) -> None:
        if self.dispatcher is None:
            raise RuntimeError("no task dispatcher configured")
        self.dispatcher.send(task, args, countdown)

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.engine.dispose()


_runtime: Runtime | None = None
_lock = threading.Lock()


def build_runtime(settings: Settings, dispatcher: Dispatcher | None = None) -> Runtime:
    engine = make_engine(settings.state_db_url)
    return Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine), dispatcher=dispatcher)


def set_runtime(rt: Runtime | None) -> None:
    global _runtime
    with _lock:
        _runtime = rt


def get_runtime() -> Runtime:
    rt = _runtime
    if rt is None:
        # Never built here from global settings: that would run a task against whatever
        # the environment says instead of the settings the process was started with.
        raise RuntimeError("no runtime installed in this process (create_app, a worker or a CLI command installs one)")
    return rt
