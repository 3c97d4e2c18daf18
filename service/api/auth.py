"""Optional API keys and the per-key lockout after repeated spoof decisions.

Keys are off unless ``LIVENESS_API_KEYS`` or ``LIVENESS_API_KEYS_FILE`` names some. Each
key has a *name*: names appear in logs and as a Prometheus label, the key itself never
does (only its SHA-256 is kept in memory). A client sends its key as ``X-API-Key: <key>``
or ``Authorization: Bearer <key>``; the presented key is compared with every configured
key in constant time (``hmac.compare_digest`` on SHA-256 digests, no early exit), so the
time taken says nothing about which key or how many characters matched.

Lockout (off unless ``LIVENESS_LOCKOUT_SPOOFS`` > 0): a key whose requests were decided
``spoof`` that many times within ``LIVENESS_LOCKOUT_WINDOW_S`` seconds is refused with 429
and ``Retry-After`` for the next ``LIVENESS_LOCKOUT_WINDOW_S`` seconds: an attacker with a
stolen key cannot iterate on attack instruments at full speed. The state lives in the
process (per worker); the clock is injectable for tests.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from service.errors import ServiceError
from service.metrics import Metrics
from service.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Shorter keys are refused at start-up: a key is a password that is never typed.
MIN_KEY_CHARS = 16
WWW_AUTHENTICATE = 'Bearer realm="flexlive"'


class UnauthorizedError(ServiceError):
    """No API key, or one that matches no configured key (401, WWW-Authenticate)."""

    status = 401
    kind = "missing-api-key"
    title = "API key required"

    def __init__(self, detail: str, *, invalid: bool) -> None:
        super().__init__(detail, field="X-API-Key", kind="invalid-api-key" if invalid else None)
        challenge = WWW_AUTHENTICATE + (', error="invalid_token"' if invalid else "")
        self.headers = {"WWW-Authenticate": challenge}


class KeyLockedError(ServiceError):
    """The key is locked after repeated spoof decisions (429, Retry-After)."""

    status = 429
    kind = "key-locked"
    title = "API key temporarily locked"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, field="X-API-Key")
        self.headers = {"Retry-After": str(retry_after_s)}


def parse_keys(text: str, source: str, *, commas: bool = False) -> list[tuple[str, str]]:
    """``name:key`` entries, one per line (``commas``: or ``,``-separated, for the
    environment variable); blank lines and lines starting with ``#`` are skipped.

    Raises :class:`SettingsError` naming the entry by number and name, never quoting a key.
    """
    out: list[tuple[str, str]] = []
    lines = text.replace(",", "\n").splitlines() if commas else text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition(":")
        name, key = name.strip(), key.strip()
        where = f"{source} entry {number}"
        if not sep or not KEY_NAME.match(name):
            raise SettingsError(
                f"{where}: expected 'name:key' with a name of letters, digits, '_', '.', '-' "
                "(at most 64 characters)"
            )
        if len(key) < MIN_KEY_CHARS or any(c.isspace() for c in key):
            raise SettingsError(
                f"{where} ('{name}'): the key must be at least {MIN_KEY_CHARS} characters "
                "without spaces (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        out.append((name, key))
    return out


def _read_key_file(path: Path) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        raise SettingsError(f"LIVENESS_API_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
    if os.name == "posix" and st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
        raise SettingsError(
            f"LIVENESS_API_KEYS_FILE: {path} is readable or writable by every user "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); restrict it, e.g. `chmod 600` "
            "(Kubernetes: defaultMode 0440 on the secret volume)"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"LIVENESS_API_KEYS_FILE: cannot read {path}: {exc}") from None


def load_keys(settings: Settings) -> list[tuple[str, str]]:
    """Keys from ``settings.api_keys`` (env) and ``settings.api_keys_file``, checked."""
    keys: list[tuple[str, str]] = []
    if settings.api_keys is not None:
        keys += parse_keys(settings.api_keys.get_secret_value(), "LIVENESS_API_KEYS", commas=True)
    if settings.api_keys_file is not None:
        keys += parse_keys(_read_key_file(settings.api_keys_file), "LIVENESS_API_KEYS_FILE")
    names = [n for n, _ in keys]
    dup_names = sorted({n for n in names if names.count(n) > 1})
    if dup_names:
        raise SettingsError(f"API key name(s) used twice: {', '.join(dup_names)}")
    by_key: dict[str, str] = {}
    for name, key in keys:
        if key in by_key:
            raise SettingsError(f"API keys '{by_key[key]}' and '{name}' are the same key")
        by_key[key] = name
    return keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyRing:
    """Named keys, kept as SHA-256 digests; lookup in constant time."""

    def __init__(self, keys: Iterable[tuple[str, str]] = ()) -> None:
        self._entries = [(name, _digest(key)) for name, key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._entries]

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` is, or None.

        Every configured key is compared (no early exit) on equal-length digests, so
        neither the position of the matching key nor a matching prefix shows in timing.
        """
        digest = _digest(presented)
        found: str | None = None
        for name, reference in self._entries:
            if hmac.compare_digest(digest, reference) and found is None:
                found = name
        return found


class SpoofLockout:
    """Locks a key for ``window_s`` after ``spoofs`` spoof decisions within ``window_s``."""

    def __init__(
        self, spoofs: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.spoofs = int(spoofs)
        self.window_s = float(window_s)
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.spoofs > 0

    def locked_for(self, name: str) -> float:
        """Seconds the key stays locked (0 when it is not locked)."""
        with self._lock:
            until = self._locked_until.get(name)
            if until is None:
                return 0.0
            left = until - self.clock()
            if left <= 0:
                del self._locked_until[name]
                return 0.0
            return left

    def record_spoof(self, name: str) -> bool:
        """Count one spoof decision for ``name``; True when this one locks the key."""
        if not self.enabled:
            return False
        with self._lock:
            now = self.clock()
            recent = self._recent.setdefault(name, deque(maxlen=self.spoofs))
            while recent and now - recent[0] >= self.window_s:
                recent.popleft()
            recent.append(now)
            if len(recent) < self.spoofs:
                return False
            recent.clear()  # the lock starts a fresh count once it expires
            self._locked_until[name] = now + self.window_s
            return True


def check_auth_settings(settings: Settings) -> KeyRing:
    """The key ring of ``settings``; raises :class:`SettingsError` for unreadable or
    malformed keys, and for a lockout or a keyed ``/metrics`` without any key (``liveness
    serve`` calls it before binding the port)."""
    keyring = KeyRing(load_keys(settings))
    if settings.lockout_spoofs > 0 and not keyring.enabled:
        raise SettingsError(
            "LIVENESS_LOCKOUT_SPOOFS counts spoof decisions per API key: it needs "
            "LIVENESS_API_KEYS or LIVENESS_API_KEYS_FILE"
        )
    if settings.metrics_require_key and not keyring.enabled:
        raise SettingsError("LIVENESS_METRICS_REQUIRE_KEY needs API keys configured")
    return keyring


@dataclass(frozen=True)
class Caller:
    """Who is asking: ``key`` is the key's name (None without keys or without one sent);
    ``trusted`` is true when keys are off or a valid key was sent."""

    key: str | None
    trusted: bool


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer``; None if neither."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Authenticator:
    """Keys + lockout + their metrics; one per app (``app.state.auth``)."""

    def __init__(
        self,
        keyring: KeyRing,
        lockout: SpoofLockout,
        metrics: Metrics,
        *,
        metrics_require_key: bool = False,
    ) -> None:
        self.keyring = keyring
        self.lockout = lockout
        self.metrics = metrics
        self.metrics_require_key = metrics_require_key
        for name in keyring.names:  # series exist (at 0) before the first event
            metrics.key_lockouts.labels(name)

    @classmethod
    def from_settings(
        cls, settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> Authenticator:
        """Raises :class:`SettingsError` as :func:`check_auth_settings` does."""
        keyring = check_auth_settings(settings)
        return cls(
            keyring,
            SpoofLockout(settings.lockout_spoofs, settings.lockout_window_s, clock),
            metrics,
            metrics_require_key=settings.metrics_require_key,
        )

    @property
    def enabled(self) -> bool:
        return self.keyring.enabled

    def identify(self, request: Request, *, required: bool) -> Caller:
        """The caller; raises :class:`UnauthorizedError` for a wrong key, or for a
        missing one when ``required``."""
        if not self.keyring.enabled:
            return Caller(None, True)
        presented = presented_key(request.headers)
        if presented is None:
            if not required:
                return Caller(None, False)
            self._refuse(request, "missing")
            raise UnauthorizedError(
                "this service needs an API key: send it as 'X-API-Key: <key>' or "
                "'Authorization: Bearer <key>'",
                invalid=False,
            )
        name = self.keyring.identify(presented)
        if name is None:
            self._refuse(request, "invalid")
            raise UnauthorizedError("the API key is not valid here", invalid=True)
        return Caller(name, True)

    def check_not_locked(self, name: str) -> None:
        left = self.lockout.locked_for(name)
        if left > 0:
            self.metrics.key_locked_refusals.labels(name).inc()
            raise KeyLockedError(
                f"API key '{name}' is locked for {math.ceil(left)} s after "
                f"{self.lockout.spoofs} spoof decisions within {self.lockout.window_s:g} s",
                retry_after_s=max(1, math.ceil(left)),
            )

    def record_decisions(self, name: str | None, decisions: Iterable[str]) -> None:
        """Per-key decision metrics, and a spoof count towards the lockout (one per
        request that had at least one face decided spoof)."""
        if name is None:
            return
        spoofed = False
        for decision in decisions:
            self.metrics.key_decisions.labels(name, decision).inc()
            spoofed = spoofed or decision == "spoof"
        if spoofed and self.lockout.record_spoof(name):
            self.metrics.key_lockouts.labels(name).inc()
            logger.warning(
                "API key locked after repeated spoof decisions",
                extra={
                    "api_key": name,
                    "spoofs": self.lockout.spoofs,
                    "window_s": self.lockout.window_s,
                },
            )

    def _refuse(self, request: Request, reason: str) -> None:
        self.metrics.auth_failures.labels(reason).inc()
        client = request.client.host if request.client else ""
        logger.warning("API key refused", extra={"reason": reason, "client": client})


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def require_api_key(request: Request) -> Caller:
    """``POST /liveness``: a valid key when keys are configured, and not locked."""
    auth = _auth(request)
    caller = auth.identify(request, required=True)
    if caller.key is not None:
        auth.check_not_locked(caller.key)
    return caller


async def optional_api_key(request: Request) -> Caller:
    """``GET /v1/models``: anyone, but a wrong key is still a 401."""
    return _auth(request).identify(request, required=False)


async def metrics_api_key(request: Request) -> Caller:
    """``GET /metrics``: keyed only when ``LIVENESS_METRICS_REQUIRE_KEY`` is set."""
    auth = _auth(request)
    return auth.identify(request, required=auth.metrics_require_key)
