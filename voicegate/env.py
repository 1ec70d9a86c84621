"""Strict readers for settings taken from the environment.

Every reader raises ImproperlyConfigured naming the variable when its value is malformed, so a
bad deployment stops at start-up instead of failing on the first request.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}
# Names of the settings that fell back to generated development keys in this process.
DEVELOPMENT_KEYS_IN_USE: list[str] = []
_BROKER_SCHEMES = {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory", "sqla+sqlite", "sqla+postgresql"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def env_str(name: str, default: str) -> str:
    return _raw(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use one of {sorted(_TRUE | _FALSE)})")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float = float("-inf"), maximum: float = float("inf")) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name}={number} is outside [{minimum}, {maximum}]")
    return number


def env_optional_float(name: str, *, minimum: float = float("-inf"), maximum: float = float("inf")) -> float | None:
    """None when unset: the caller then uses the measured default that lives with the code it tunes."""
    return None if _raw(name) is None else env_float(name, 0.0, minimum=minimum, maximum=maximum)


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(f"{name}={value!r} has an empty item (comma-separated, no blanks)")
    return items


def env_optional_patterns(name: str) -> dict[str, str] | None:
    """A JSON object of name -> regular expression, each compiled here so a typo stops start-up; None when unset."""
    value = _raw(name)
    if value is None:
        return None
    try:
        patterns = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not JSON (expected an object of name -> regular expression)") from None
    if not isinstance(patterns, dict) or not all(isinstance(p, str) and p for p in patterns.values()):
        raise ImproperlyConfigured(f"{name} must be a JSON object of name -> non-empty regular expression")
    for pattern_name, pattern in patterns.items():
        try:
            re.compile(pattern)
        except re.error as error:
            raise ImproperlyConfigured(f"{name}: pattern {pattern_name!r} is not a valid regular expression ({error})") from None
    return patterns


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return Path(value).expanduser().resolve() if value else default


def env_database(name: str, default_sqlite_path: Path) -> dict[str, Any]:
    value = _raw(name) or f"sqlite:///{default_sqlite_path}"
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in _DATABASE_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} is not a database URL with a supported scheme {sorted(_DATABASE_SCHEMES)}"
        )
    try:
        config = dict(dj_database_url.parse(value, conn_max_age=60 if scheme != "sqlite" else 0))
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"{name} could not be parsed: {error}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={_redact(value)!r} names no database")
    return config


def env_broker_url(name: str, default: str) -> str:
    value = _raw(name)
    if value is None:
        return default
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in _BROKER_SCHEMES:
        raise ImproperlyConfigured(f"{name}={_redact(value)!r} is not a broker URL with a supported scheme {sorted(_BROKER_SCHEMES)}")
    return value


def env_secret(name: str, *, dev_file: Path, nbytes: int = 32) -> str:
    """A text secret from NAME or NAME_FILE; otherwise a generated development secret kept in dev_file."""
    value = _secret_from_env(name)
    if value is not None:
        return value
    return _dev_secret(name, dev_file, nbytes).decode("ascii")


def env_key(name: str, *, dev_file: Path) -> bytes:
    """A 32-byte key from NAME or NAME_FILE (base64 or hex); otherwise a generated development key."""
    value = _secret_from_env(name)
    if value is None:
        return decode_key(name, _dev_secret(name, dev_file, 32).decode("ascii"))
    return decode_key(name, value)


def env_key_list(name: str) -> list[bytes]:
    """Zero or more 32-byte keys, comma-separated, from NAME or NAME_FILE (used for retired keys)."""
    value = _secret_from_env(name)
    if value is None:
        return []
    return [decode_key(name, item.strip()) for item in value.split(",") if item.strip()]


def decode_key(name: str, text: str) -> bytes:
    for decoder in (_from_hex, _from_base64):
        key = decoder(text)
        if key is not None and len(key) == 32:
            return key
    raise ImproperlyConfigured(f"{name} must be 32 bytes, written as 64 hex digits or base64")


def _from_hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _from_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _secret_from_env(name: str) -> str | None:
    value = _raw(name)
    file_name = _raw(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ImproperlyConfigured(f"set {name} or {name}_FILE, not both")
    if file_name is None:
        return value
    try:
        content = Path(file_name).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {error.strerror}") from None
    if not content:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty")
    return content


def _dev_secret(name: str, path: Path, nbytes: int) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two processes starting at once must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(nbytes))
    DEVELOPMENT_KEYS_IN_USE.append(name)
    return path.read_bytes().strip()


def warn_about_development_keys(folder: Path) -> None:
    if DEVELOPMENT_KEYS_IN_USE:
        logger.warning(
            "DEVELOPMENT keys in use (generated in %s, never use them in production): %s",
            folder,
            ", ".join(DEVELOPMENT_KEYS_IN_USE),
        )


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
