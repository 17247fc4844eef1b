"""Store URLs made safe to print: :func:`redact_url` for the URL, :func:`scrub` for messages about it.

Secrets a MongoDB URL can hold: the password of ``user:password@`` and option values such as
``tlsCertificateKeyFilePassword``, ``proxyPassword`` or ``authMechanismProperties`` (AWS session
tokens). When pymongo's own parser reads the URL (without the DNS lookup ``mongodb+srv`` would make),
its answer says where the credentials end (so can pymongo's reading of the ``user:password`` part alone,
when only the rest of the URL is wrong), and the password and every secret option are masked. When
neither does (a password with an unescaped ``/`` or ``@`` is exactly such a URL), everything between
``://`` and the last ``@`` is masked, user name included, since nothing says where the user name ends.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, unquote_plus

MASK = "***"
_SECRET_OPTION = re.compile(r"pass|pwd|secret|token|credential|authmechanismproperties", re.IGNORECASE)
"""Query options whose value is masked (``tlsCertificateKeyFilePassword``, ``proxyPassword``, ...)."""


def _mongo_parse(url: str) -> dict[str, Any] | None:
    """pymongo's parse of a ``mongodb://``/``mongodb+srv://`` URL (no DNS lookup), or None."""
    try:
        return _pymongo_parse(url)
    except Exception:  # any refusal: the URL is not one pymongo reads, mask it the blunt way
        return None


def _pymongo_parse(url: str) -> dict[str, Any]:
    try:
        from pymongo.uri_parser_shared import _validate_uri  # no SRV lookup, unlike parse_uri
    except ImportError:  # pragma: no cover - pymongo < 4.9
        from pymongo.uri_parser import parse_uri

        return dict(parse_uri(url))
    return dict(_validate_uri(url))


def _mask_query(query: str) -> str:
    parts = re.split(r"([&;])", query)
    out = []
    for part in parts:
        key, eq, _value = part.partition("=")
        out.append(f"{key}={MASK}" if eq and _SECRET_OPTION.search(key) else part)
    return "".join(out)


def _userinfo_ok(userinfo: str) -> bool:
    """Whether pymongo would read ``userinfo`` as ``user[:password]`` (escaped as RFC 3986 asks)."""
    try:
        from pymongo.uri_parser_shared import parse_userinfo
    except ImportError:  # pragma: no cover - pymongo < 4.9
        from pymongo.uri_parser import parse_userinfo
    try:
        parse_userinfo(userinfo)
    except Exception:
        return False
    return True


def _split(url: str) -> tuple[str, str | None, str] | None:
    """``(scheme, userinfo, after)``: the URL around its credentials, ``userinfo`` None when it has none,
    ``"" `` when they cannot be told apart from the rest (mask all of it). None without ``://``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if "@" not in rest:
        return scheme, None, rest
    host_part, _, tail = rest.partition("/")
    parsed = scheme in ("mongodb", "mongodb+srv") and _mongo_parse(url) is not None
    if parsed and "@" not in host_part:
        return scheme, None, rest  # an "@" in an option's value
    if "@" in host_part:
        userinfo, _, hosts = host_part.rpartition("@")
        after = rest[len(host_part) - len(hosts) :]
        if parsed or ("@" not in tail and _userinfo_ok(userinfo)):
            return scheme, userinfo, after
    return scheme, "", rest.rpartition("@")[2]  # nothing says where a user name or password ends


def redact_url(url: str) -> str:
    """The URL with its password and secret options replaced by ``***`` (for messages and logs)."""
    split = _split(url)
    if split is None:
        return url
    scheme, userinfo, after = split
    if userinfo is None:
        head = ""
    elif userinfo == "":
        head = f"{MASK}@"
    else:
        user, colon, _ = userinfo.partition(":")
        head = f"{user}{':' + MASK if colon else ''}@"
    before, qmark, query = after.partition("?")
    return f"{scheme}://{head}{before}{qmark}{_mask_query(query)}"


def _secrets(url: str) -> set[str]:
    """Secret strings of ``url`` as they may appear in a message (raw and decoded)."""
    found: set[str] = set()
    split = _split(url)
    if split is None:
        return found
    _, userinfo, after = split
    rest = url.partition("://")[2]
    if userinfo == "":  # unparsed credentials: all of it, and its pieces
        userinfo = rest.rpartition("@")[0]
        found.add(userinfo)
        found.update(p for p in re.split(r"[/?#@:]", userinfo.partition(":")[2]) if p)
    if userinfo:
        _, colon, password = userinfo.partition(":")
        if colon and password:
            found.add(password)
    query = after.partition("?")[2]
    for part in re.split(r"[&;]", query):
        key, eq, value = part.partition("=")
        if eq and value and _SECRET_OPTION.search(key):
            found.add(value)
            found.update(p for p in re.split(r"[,:]", value) if p)
    return found | {unquote(s) for s in found} | {unquote_plus(s) for s in found}


def scrub(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with every secret of the URL replaced by ``***``, longest
    first. Parts shorter than 3 characters are left (they would mangle words; the URL itself is shown
    through :func:`redact_url`)."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
