"""Basic authentication whose failures all cost the same and cannot be made a CPU lever.

The rules, in the order a request meets them. 2, 3 and 5 are exporter-toolkit's, except
that only successes are cached (a flood of wrong passwords cannot evict the good ones);
4 is added because a Python bcrypt check costs a core for its duration.

1. A header that is not ``Basic base64(user:password)`` in ASCII with a UTF-8 user is
   malformed: answered 400 before anything is hashed. No header, or another scheme: 401.
2. Verified credentials are remembered (positive results only, at most ``cache_size``),
   under a keyed BLAKE2 digest of user and password, so no password is kept. A scrape
   with known-good credentials costs one digest, never a bcrypt, and is never throttled.
3. An unknown user is checked against a dummy hash of the configured users' highest cost,
   so it fails in the same time as a known user with a wrong password: timing tells no
   usernames apart.
4. Each failure that ran bcrypt takes a token from its client's bucket (one per IPv4
   address, one per IPv6 /64): ``failures_burst`` failures, then ``failures_per_second``
   (the token is taken before bcrypt runs and given back on success).
   All failures together spend at most ``bcrypt_share`` of one core on bcrypt (a second
   bucket, counted in seconds of bcrypt): many addresses get no more than one. An empty
   bucket answers 429 with Retry-After, without running bcrypt, after holding the answer
   ``throttled_delay_seconds`` (the server sleeps: no CPU), so that a client looping on
   wrong passwords is slowed to one try a second per connection instead of
   turning cheap 429s into a request flood.
5. bcrypt runs one call at a time: whatever the load, logins use at most one core.
6. Passwords are cut to bcrypt's 72 bytes, as htpasswd and bcrypt < 5 do.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import ipaddress
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

BCRYPT_MAX_PASSWORD_BYTES = 72
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
"""A bcrypt hash as htpasswd, Python's bcrypt and Go's x/crypto/bcrypt write it."""


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials, or another scheme than Basic: 401
    MALFORMED = "malformed"  # 400
    WRONG = "wrong"  # bcrypt ran and said no: 401
    THROTTLED = "throttled"  # too many failures: 429, bcrypt not run


@dataclass(frozen=True)
class AuthResult:
    verdict: Verdict
    retry_after_seconds: float = 0.0


@dataclass(frozen=True)
class AuthLimits:
    failures_burst: int = 10
    failures_per_second: float = 0.1  # then one failure every 10 s
    bcrypt_share: float = 0.25  # of one core, for all failed logins together
    bcrypt_burst_seconds: float = 2.0
    cache_size: int = 128
    tracked_clients: int = 10_000
    throttled_delay_seconds: float = 1.0  # a 429 waits this long (or Retry-After if less)


class TokenBucket:
    """``capacity`` tokens, ``rate`` more each second; a charge may leave it in debt."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def wait(self, now: float, need: float) -> float:
        """Seconds until the bucket holds ``need`` tokens; 0 when it does now."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return max(0.0, (need - self.tokens) / self.rate)

    def charge(self, amount: float) -> None:
        self.tokens -= amount

    def refund(self, amount: float) -> None:
        self.tokens = min(self.capacity, self.tokens + amount)


def client_key(address: str) -> str:
    """The address failures are counted under: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def parse_basic_authorization(header: str) -> tuple[str, bytes] | Verdict:
    """``Basic base64(user:password)`` -> (user, password), or why it is refused."""
    if not header.isascii():
        return Verdict.MALFORMED
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return Verdict.MISSING
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return Verdict.MALFORMED
    user, colon, password = decoded.partition(b":")
    if not colon:
        return Verdict.MALFORMED
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return Verdict.MALFORMED


def bcrypt_cost(hashed: str) -> int:
    match = BCRYPT_HASH.match(hashed)
    return int(match.group(1)) if match else 10


class BasicAuth:
    """Checks ``Authorization`` headers against ``users`` (user -> bcrypt hash)."""

    def __init__(
        self,
        users: Mapping[str, str],
        limits: AuthLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import bcrypt  # noqa: PLC0415 - optional: only basic auth needs it

        self._checkpw = bcrypt.checkpw
        self.limits = limits or AuthLimits()
        self._clock = clock
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        cost = max((bcrypt_cost(hashed) for hashed in users.values()), default=10)
        self._dummy = bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt(cost))
        self._digest_key = os.urandom(32)
        self._verified: dict[bytes, None] = {}
        self._clients: dict[str, TokenBucket] = {}
        self._budget = TokenBucket(
            self.limits.bcrypt_burst_seconds, self.limits.bcrypt_share, clock()
        )
        self._state = threading.Lock()  # guards the buckets and the cache: held briefly
        self._bcrypt = threading.Lock()  # one bcrypt at a time

    def check(self, header: str | None, client: str) -> AuthResult:
        if header is None:
            return AuthResult(Verdict.MISSING)
        parsed = parse_basic_authorization(header)
        if isinstance(parsed, Verdict):
            return AuthResult(parsed)
        user, password = parsed
        password = password[:BCRYPT_MAX_PASSWORD_BYTES]
        digest = hashlib.blake2b(
            user.encode() + b":" + password, key=self._digest_key, digest_size=32
        ).digest()
        if digest in self._verified:
            return AuthResult(Verdict.OK)
        return self._verify(user, password, digest, client)

    def _verify(self, user: str, password: bytes, digest: bytes, client: str) -> AuthResult:
        """bcrypt, unless the client's bucket or the shared bcrypt budget is empty."""
        hashed = self._users.get(user)
        with self._state:
            now = self._clock()
            bucket = self._bucket(client_key(client), now)
            wait = bucket.wait(now, 1.0)
            if wait > 0:
                return AuthResult(Verdict.THROTTLED, wait)
            bucket.charge(1.0)  # taken now, so that concurrent tries cannot overdraw it
        with self._bcrypt:
            with self._state:
                wait = self._budget.wait(self._clock(), 0.0)
                if wait > 0:
                    bucket.refund(1.0)
                    return AuthResult(Verdict.THROTTLED, wait)
            started = time.perf_counter()
            try:
                matches = self._checkpw(password, hashed or self._dummy)
            except ValueError:  # a hash bcrypt cannot read: a failure like any other
                matches = False
            with self._state:
                if matches and hashed is not None:
                    bucket.refund(1.0)
                    self._remember(digest)
                    return AuthResult(Verdict.OK)
                self._budget.charge(time.perf_counter() - started)
        return AuthResult(Verdict.WRONG)

    def _remember(self, digest: bytes) -> None:
        while len(self._verified) >= self.limits.cache_size:
            del self._verified[next(iter(self._verified))]
        self._verified[digest] = None

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._clients.get(key)
        if bucket is None:
            if len(self._clients) >= self.limits.tracked_clients:
                self._forget_clients(now)
            bucket = TokenBucket(self.limits.failures_burst, self.limits.failures_per_second, now)
            self._clients[key] = bucket
        return bucket

    def _forget_clients(self, now: float) -> None:
        """Drop full buckets (they remember nothing), then the oldest, down to 90%."""
        full = float(self.limits.failures_burst)
        for key in [k for k, b in self._clients.items() if b.wait(now, full) == 0]:
            del self._clients[key]
        keep = int(self.limits.tracked_clients * 0.9)
        for key in list(self._clients)[: max(0, len(self._clients) - keep)]:
            del self._clients[key]
