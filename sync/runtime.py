"""What every Ledgersync process needs, built once from its `Config` (the environment's configuration).

The web app builds a `Runtime` in `create_app`; a worker builds one per process
the first time a job asks for `current_runtime()`. Jobs receive ids, not
objects, and resolve everything else through the runtime, so a job behaves the
same whichever process runs it.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rq.job import Job

from sync.config import Config
from sync.crypto import TokenCipher
from sync.job_queue import JobQueue
from sync.log import configure_logging
from sync.store.database import Database

log = logging.getLogger(__name__)


class Runtime:
    """Config plus the database, the job queue and the token cipher they describe."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.database = Database(config.database_url)
        self.jobs = JobQueue(config.redis_url, config.instance_path)
        self.cipher = TokenCipher(config.token_encryption_key)
        self.token_listeners: list[Callable[[str, str], None]] = [_load(spec) for spec in config.token_refresh_hooks]

    def token_refreshed(self, provider: str, access_token: str) -> None:
        """Tell the registered listeners (`LEDGERSYNC_TOKEN_REFRESH_HOOKS`); one that fails never fails the refresh."""
        for listener in self.token_listeners:
            try:
                listener(provider, access_token)
            except Exception:  # noqa: BLE001 - a listener's trouble is its own; the token is stored
                log.exception("a token-refresh listener failed", extra={"provider": provider})

    def enqueue(self, func: Callable[..., Any], *args: Any, **options: Any) -> Job:
        """Enqueue a job; in embedded mode it runs now, in this process, with this runtime."""
        return self._embedded_aware(self.jobs.enqueue, func, *args, **options)

    def enqueue_once(self, func: Callable[..., Any], *args: Any, **options: Any) -> Job:
        """`JobQueue.enqueue_once`; in embedded mode it runs now, in this process, with this runtime."""
        return self._embedded_aware(self.jobs.enqueue_once, func, *args, **options)

    def _embedded_aware(self, enqueue: Callable[..., Job], *args: Any, **options: Any) -> Job:
        if self.jobs.mode == "embedded":  # the job runs inside this call: it must see this runtime
            with use_runtime(self):
                return enqueue(*args, **options)
        return enqueue(*args, **options)

    def close(self) -> None:
        self.database.dispose()


def _load(spec: str) -> Callable[..., Any]:
    """ "package.module:function" → the function (a wrong name fails at start, not at the first refresh)."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"a hook is named as module:function, not {spec!r}")
    return getattr(importlib.import_module(module_name), attribute)


_current: Runtime | None = None
_current_pid: int | None = None


def current_runtime() -> Runtime:
    """The runtime of this process, built from the environment on first use.

    RQ's default worker forks a child per job. A runtime inherited across a
    fork would share database connections with its parent, so a new process
    gets a new runtime.
    """
    global _current, _current_pid
    if _current is None or _current_pid != os.getpid():
        config = Config.from_env()
        if not logging.getLogger().handlers:
            configure_logging(config)
        _current, _current_pid = Runtime(config), os.getpid()
    return _current


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the current one for the block (in-process jobs, tests)."""
    global _current, _current_pid
    saved = (_current, _current_pid)
    _current, _current_pid = runtime, os.getpid()
    try:
        yield runtime
    finally:
        _current, _current_pid = saved
