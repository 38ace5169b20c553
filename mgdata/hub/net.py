"""Network failures talking to the Hub: bounded retries, then one line naming the endpoint and what to check.

Every Hub call mgdata makes goes through :func:`with_retries`. Transient failures
(HTTP 5xx, 429, timeouts, connections reset or cut mid-transfer) are retried with
exponential backoff; a 429's ``Retry-After`` is honoured up to a cap. Failures a
retry cannot fix (the name does not resolve, nothing listens on the port, a 4xx
other than 429) stop at once. What is left is a :class:`HubNetworkError`, an
:class:`~mgdata.errors.MgdataError`, which the CLI and ``stage_main`` print as one
line and exit 2.

``huggingface_hub`` 2.4 has retry loops of its own (``http_backoff``: 5 retries,
1-8 s apart, DNS failures included; ``http_get``: 5 resumes, 1 s apart). Left on,
they would multiply with ours and ignore the configured bounds, so
:func:`hub_session` turns them to a single attempt for the duration of an mgdata
call and gives the shared HTTP client the configured timeout.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mgdata.errors import MgdataError

T = TypeVar("T")

# Substrings of resolver errors (glibc and musl wording): the endpoint's host name does not resolve.
_DNS_WORDS = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated",
    "name resolution",
    "getaddrinfo failed",
)
_DNS_ERRNOS = {socket.EAI_NONAME, socket.EAI_AGAIN, getattr(socket, "EAI_NODATA", -5), socket.EAI_FAIL}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on the Hub.

    Attributes:
        retries: Retries after the first attempt of one call (0 = no retry).
        backoff_s: Wait before the first retry; doubled for each further one.
        max_backoff_s: Cap of one wait (also of a server's ``Retry-After``).
        timeout_s: Connect/read timeout of one HTTP request.
    """

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


class HubNetworkError(MgdataError):
    """The Hub could not be reached or kept failing; the message names the endpoint and what to check.

    Args:
        endpoint: The Hub URL (``HF_ENDPOINT`` or https://huggingface.co).
        action: What mgdata was doing, e.g. ``"pull hf://datasets/org/name@v1"``.
        kind: The failure class (see :func:`classify`).
        detail: One line from the underlying error.
        attempts: How many attempts were made.
    """

    def __init__(self, endpoint: str, action: str, kind: str, detail: str, attempts: int):
        self.endpoint = endpoint
        self.kind = kind
        self.attempts = attempts
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{endpoint}: {action} failed{tried}: {_WHAT[kind]} ({detail}); check {_CHECK[kind]}")


_WHAT = {
    "dns": "the host name does not resolve",
    "refused": "connection refused (nothing listens there)",
    "timeout": "the Hub did not answer in time",
    "reset": "the connection was reset or cut mid-transfer",
    "unreachable": "the network is unreachable",
    "server": "the Hub answered with a server error",
    "ratelimit": "rate-limited by the Hub (HTTP 429)",
}
_CHECK = {
    "dns": "the host in HF_ENDPOINT and your DNS/network connection (or set HF_HUB_OFFLINE=1 to use local copies)",
    "refused": "HF_ENDPOINT (host and port) and that the server is running",
    "timeout": "your network connection, or raise hub.timeout_s / --timeout",
    "reset": "your network connection and proxy settings; rerun to resume",
    "unreachable": "your network connection and proxy settings (HTTPS_PROXY)",
    "server": "https://status.huggingface.co (or the server's logs) and rerun later",
    "ratelimit": "your token's rate limits; rerun later",
}
TRANSIENT = frozenset({"timeout", "reset", "server", "ratelimit"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _status(exc: BaseException) -> tuple[int | None, float | None]:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None, None
    retry_after = None
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        value = response.headers.get("Retry-After")
        retry_after = float(value) if value is not None else None
    return status, retry_after


def _http_kind(status: int, retry_after: float | None) -> tuple[str | None, float | None, str]:
    """``classify``'s answer for an HTTP error status."""
    if status == 429:
        return "ratelimit", retry_after, f"HTTP 429{_retry_after_note(retry_after)}"
    if status >= 500:
        return "server", None, f"HTTP {status}"
    return None, None, ""  # another 4xx: the caller's own handling (repo/revision not found, auth) applies


def _connection_kind(e: BaseException, detail: str) -> str | None:
    """Kind of a connection-level failure from its type, errno and message; None if none of them tells."""
    low = detail.lower()
    code = getattr(e, "errno", None)
    if isinstance(e, socket.gaierror) or code in _DNS_ERRNOS or any(w in low for w in _DNS_WORDS):
        return "dns"
    if isinstance(e, ConnectionRefusedError) or code == errno.ECONNREFUSED or "connection refused" in low:
        return "refused"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH) or "unreachable" in low:
        return "unreachable"
    if isinstance(e, ConnectionResetError | BrokenPipeError) or code in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    return None


def classify(exc: BaseException) -> tuple[str | None, float | None, str]:
    """``(kind, retry_after_s, detail)`` of a network failure, or ``(None, None, "")`` if it is not one.

    Kinds: ``dns``, ``refused``, ``unreachable``, ``timeout``, ``reset``, ``server`` (5xx),
    ``ratelimit`` (429). The cause chain is searched, since ``huggingface_hub`` wraps
    connection errors (e.g. ``LocalEntryNotFoundError`` from ``snapshot_download``).
    """
    import httpx2

    for e in _chain(exc):
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        status, retry_after = _status(e)
        if status is not None:
            return _http_kind(status, retry_after)
        if isinstance(e, httpx2.TimeoutException | TimeoutError | socket.timeout):
            return "timeout", None, detail or "timed out"
        if isinstance(e, httpx2.ConnectError | OSError):
            kind = _connection_kind(e, detail)
            if kind is not None:
                return kind, None, detail
            if isinstance(e, httpx2.ConnectError):
                continue  # a cause further down may be more precise; else "reset" below
        if isinstance(e, httpx2.RemoteProtocolError | httpx2.ReadError | httpx2.WriteError | httpx2.NetworkError):
            return "reset", None, detail
        if "consistency check failed" in detail.lower():
            return "reset", None, "download cut short"
    for e in _chain(exc):
        if isinstance(e, httpx2.ConnectError):
            return "refused" if "refused" in str(e).lower() else "unreachable", None, str(e).splitlines()[0][:200]
    return None, None, ""


def _retry_after_note(retry_after: float | None) -> str:
    return f", Retry-After {retry_after:g} s" if retry_after is not None else ""


def with_retries(
    fn: Callable[[], T],
    *,
    endpoint: str,
    action: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, str, float], None] | None = None,
) -> T:
    """Call ``fn()``; retry transient network failures per ``policy``; raise :class:`HubNetworkError` at the end.

    Args:
        fn: The Hub call (no arguments); it must be safe to repeat (every mgdata
            Hub call is: reads, idempotent uploads, and one atomic commit).
        endpoint: Named in the error.
        action: Named in the error (what was being done).
        policy: Bounds of the retries.
        sleep: Waits between attempts (tests pass a no-op).
        on_retry: Called with ``(attempt, kind, wait_s)`` before each wait (logging).

    Raises:
        HubNetworkError: A non-transient network failure, or transient ones past ``policy.retries``.
        Exception: Anything that is not a network failure, unchanged.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except MgdataError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below; non-network errors are re-raised as they are
            kind, retry_after, detail = classify(exc)
            if kind is None:
                raise
            if kind not in TRANSIENT or attempt > policy.retries:
                raise HubNetworkError(endpoint, action, kind, detail, attempt) from None
            wait = policy.wait(attempt, retry_after)
            if on_retry is not None:
                on_retry(attempt, kind, wait)
            sleep(wait)


@contextlib.contextmanager
def hub_session(policy: RetryPolicy) -> Iterator[None]:
    """Make ``huggingface_hub`` do single attempts with ``policy.timeout_s`` while the block runs.

    Private hooks of huggingface_hub 2.4 are changed only if they exist, and restored
    afterwards; on another version its own retries may add to ours (still bounded).
    """
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import _http

    saved: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    loops = [
        (getattr(_http, "http_backoff", None), "max_retries"),
        (getattr(_http, "http_stream_backoff", None), "max_retries"),
        (getattr(_http, "_http_backoff_base", None), "max_retries"),
        (getattr(file_download, "http_get", None), "_nb_retries"),
    ]
    for fn, key in loops:
        fn = inspect.unwrap(fn) if fn is not None else None  # decorators (validators, contextmanager) wrap them
        if fn is not None and key in (fn.__kwdefaults__ or {}):
            patch(fn, "__kwdefaults__", dict(fn.__kwdefaults__, **{key: 0}))
    for name in ("HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_ETAG_TIMEOUT"):
        if hasattr(constants, name):
            patch(constants, name, policy.timeout_s)
    factory = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    hook = getattr(_http, "hf_request_event_hook", None)
    if factory is not None and factory is getattr(_http, "default_client_factory", None) and hook is not None:
        import httpx2

        class _Client(httpx2.Client):
            # huggingface_hub passes timeout=None (no timeout at all) on many calls, e.g. repo_info: the
            # configured timeout replaces it, so no request can wait forever on a silent server.
            def build_request(self, *args: Any, **kwargs: Any) -> Any:
                if kwargs.get("timeout", httpx2.USE_CLIENT_DEFAULT) is None:
                    kwargs["timeout"] = httpx2.USE_CLIENT_DEFAULT
                return super().build_request(*args, **kwargs)

        def client() -> Any:
            return _Client(
                event_hooks={"request": [hook]}, follow_redirects=True, timeout=httpx2.Timeout(policy.timeout_s)
            )

        _http.set_client_factory(client)
    else:
        factory = None  # a user's own client factory is left alone
    try:
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
        if factory is not None:
            _http.set_client_factory(factory)


def endpoint_of(api: Any = None) -> str:
    """The Hub URL calls go to (``api.endpoint``, else ``HF_ENDPOINT``, else huggingface.co)."""
    if api is not None and getattr(api, "endpoint", None):
        return str(api.endpoint)
    from huggingface_hub import constants

    return str(constants.ENDPOINT)
