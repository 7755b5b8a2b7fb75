"""Secrets out of anything a run records: command lines, environments, reports, logs.

Benchmarks write their command line into committed JSON and markdown, and a token passed as
``--token`` went with it. Every recorder (the benchmark scripts, their report pages,
``hwlat demo``'s report) passes what it writes through :func:`redact` or :func:`redact_json`,
so that one set of rules decides what a secret looks like. It lives here, the lowest layer
every recorder may import, and needs nothing but :mod:`re`.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"  # what SQLAlchemy prints for a hidden password, so both read the same

# A value ends at white space or at the quoting around it (shell quotes, markdown backticks);
# a placeholder such as ``<token>`` in usage text is not one.
_VALUE = r"(?!<)[^\s'\"`]+"
# ``--token X``, ``--token=X``, and flags such as ``--admin-token`` or ``--db-password``.
_FLAG = re.compile(rf"(--(?:[\w-]*-)?(?:token|password|passwd|secret)(?:=|\s+)){_VALUE}", re.I)
# ``HWLAT_TOKEN=X``, ``PGPASSWORD=X``: the environment form. The name must end with the word,
# so that settings about secrets (``HWLAT_TOKEN_CACHE_S=5``) stay readable, and a switch
# (``HWLAT_METRICS_REQUIRE_TOKEN=true``) is no secret either.
_SECRET_NAME = r"[A-Z0-9_]*(?:TOKEN|PASSWORD|PASSWD|SECRET)"
_ENV = re.compile(rf"\b({_SECRET_NAME}=)(?!(?:true|false)(?![^\s'\"`])){_VALUE}")
# JSON keys that name a secret, in any case: "HWLAT_TOKEN", "token", "admin_password".
_SECRET_KEY = re.compile(r"[\w-]*(?:token|password|passwd|secret)", re.I)
# ``postgresql+psycopg://user:password@host/db``: the password between ``user:`` and ``@``.
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@'\"`]*:)[^\s@/'\"`]+@", re.I)
_BEARER = re.compile(rf"\b(Bearer\s+){_VALUE}", re.I)
# The service's tokens: ``hwlat_`` and 43 URL-safe characters (secrets.token_urlsafe(32)).
# Requiring a capital letter keeps snake_case names such as metric names
# (``hwlat_agent_last_seen_timestamp_seconds``) out; a random token lacks one with
# probability (38/64)**43, about 2e-10.
TOKEN = re.compile(r"\bhwlat_(?=[\w-]*[A-Z])[\w-]{20,}")


def redact(text: str) -> str:
    """``text`` with every secret it shows replaced by ``***``; the rest as it was."""
    text = _FLAG.sub(rf"\g<1>{MASK}", text)
    text = _ENV.sub(rf"\g<1>{MASK}", text)
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    return TOKEN.sub(f"hwlat_{MASK}", text)


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value with every string redacted, and the whole value of any key
    that names a secret (``"token"``, ``"HWLAT_TOKEN"``, ``"password"``) replaced."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: MASK
            if isinstance(key, str) and _SECRET_KEY.fullmatch(key) and isinstance(item, str)
            else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_json(item) for item in value]
    return value


__all__ = ["MASK", "TOKEN", "redact", "redact_json"]
