"""User errors raised inside Ray actors, brought back to the driver as the one line they are.

Ray wraps an exception raised in an actor method in a `RayTaskError` (whose `cause` is the original
exception; `ray.get` raises a class that is both), and one raised in an actor's `__init__` in an
`ActorDiedError` that keeps only the text of the creation task's traceback. `user_error_in` finds the
`UserError` in either (and in `__cause__` / `__context__` chains), so that the CLI prints the same one
line and exit code 2 as for a mistake found in the driver. Anything else is a bug and keeps its traceback.

`get_with_notice` is `ray.get` that, while the refs wait (for instance for Ray to place actors), calls
`notice(seconds_waited)` every `every_s` seconds instead of leaving a frozen screen.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from hgpo_cli.errors import UserError

# The last line of a Python traceback: "hgpo_cli.errors.UserError: message" (module path optional).
_TRACEBACK_TAIL = re.compile(r"^(?:[\w.]+\.)?(?P<cls>\w+): (?P<msg>.+)$")


def _user_error_names() -> dict[str, type[UserError]]:
    """UserError and its subclasses by class name."""
    names: dict[str, type[UserError]] = {}
    todo: list[type[UserError]] = [UserError]
    while todo:
        cls = todo.pop()
        names[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return names


def _from_text(text: str) -> UserError | None:
    """The UserError named by the last matching line of a traceback text, or None."""
    names = _user_error_names()
    for line in reversed(text.strip().splitlines()):
        match = _TRACEBACK_TAIL.match(line.strip())
        if match and match.group("cls") in names:
            return names[match.group("cls")](match.group("msg").strip())
    return None


def _clean(err: UserError) -> UserError:
    """A plain copy of a UserError (not Ray's dual RayTaskError class, whose str() is a traceback)."""
    mro = type(err).__mro__
    cls = next((c for c in mro if issubclass(c, UserError) and "RayTaskError" not in c.__name__), UserError)
    return cls(*err.args) if err.args else cls(str(err))


def user_error_in(exc: BaseException) -> UserError | None:
    """The UserError behind `exc` (raised in the driver or in a Ray actor or task), or None for a bug."""
    ray_exceptions = sys.modules.get("ray.exceptions")
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if ray_exceptions is not None and isinstance(err, ray_exceptions.RayTaskError):
            cause = getattr(err, "cause", None)
            if isinstance(cause, UserError):
                return _clean(cause)
            todo.append(cause)
            continue
        if isinstance(err, UserError):
            return _clean(err)
        if ray_exceptions is not None and isinstance(err, ray_exceptions.RayActorError):
            found = _from_text(str(getattr(err, "error_msg", "") or err))
            if found is not None:
                return found
        todo += [err.__cause__, err.__context__]
    return None


def defer_init_errors(cls: type) -> type:
    """`cls` for `ray.remote`, with a UserError of its `__init__` kept and raised by each public method.

    Ray prints the traceback of an exception raised in an actor's `__init__` from the worker itself (the
    driver cannot silence it) and keeps only its text; raised by a method call instead, it reaches the
    driver as a `RayTaskError` whose cause is the UserError, and nothing is printed on the way.
    """

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        self._hgpo_init_error = None
        try:
            cls.__init__(self, *args, **kwargs)
        except UserError as err:
            self._hgpo_init_error = _clean(err)

    def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self._hgpo_init_error is not None:
                raise self._hgpo_init_error
            return method(self, *args, **kwargs)

        return call

    members: dict[str, Any] = {"__init__": init, "__module__": cls.__module__, "__doc__": cls.__doc__}
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        plain = not isinstance(inspect.getattr_static(cls, name), (staticmethod, classmethod))
        if not name.startswith("_") and plain:
            members[name] = guarded(method)
    deferred = type(cls.__name__, (cls,), members)
    deferred.__qualname__ = cls.__qualname__
    return deferred


def get_with_notice(
    refs: Any,
    notice: Callable[[float], None] | None,
    *,
    every_s: float = 30.0,
) -> Any:
    """`ray.get(refs)`, calling `notice(seconds waited)` every `every_s` seconds while it waits."""
    import ray
    from ray.exceptions import GetTimeoutError

    if notice is None:
        return ray.get(refs)
    start = time.monotonic()
    while True:
        try:
            return ray.get(refs, timeout=every_s)
        except GetTimeoutError:
            notice(time.monotonic() - start)
