"""Hiding secrets in what Vigil shows: URLs in ids, log lines and error messages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_QUERY_KEYS = ("pass", "pwd", "token", "secret", "key", "auth", "sig")
_URL_PASSWORD = re.compile(r"(://[^/:@\s']*:)[^@/\s']*@")


def redact_url(url: str) -> str:
    """Hide the password and secret-looking query values of ``url``.

    >>> redact_url("rtsp://admin:hunter2@10.0.0.5:554/stream?token=abc&ch=1")
    'rtsp://admin:***@10.0.0.5:554/stream?token=***&ch=1'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    netloc = parts.netloc
    if password is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:***@{host}"
    query = _redact_query(parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret; rebuilding would drop the '//' of 'sqlite:////path'
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """Hide the password of every ``scheme://user:password@host`` URL inside free text."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _redact_query(query: str) -> str:
    pairs = []
    for pair in query.split("&") if query else []:
        name, sep, _ = pair.partition("=")
        secret = sep and any(key in name.lower() for key in _SECRET_QUERY_KEYS)
        pairs.append(f"{name}=***" if secret else pair)
    return "&".join(pairs)
