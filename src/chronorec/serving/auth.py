"""The API key of the write and export endpoints (``X-API-Key``), compared in constant time."""

from __future__ import annotations

import hmac

API_KEY_HEADER = "X-API-Key"
DENIED = f"{API_KEY_HEADER}: missing or wrong API key"
"""The error message of a 401 answer (it says nothing about which part was wrong)."""


def key_matches(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is the service's key; every key matches an open service (``expected`` None).

    ``hmac.compare_digest`` takes as long for a near miss as for a wild guess, so the answer
    time does not leak the key.
    """
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = ["API_KEY_HEADER", "DENIED", "key_matches"]
