"""Configuration, read from the environment.

With no configuration the platform runs on a SQLite file in ``instance/`` and
keeps a generated secret key there; every setting can be overridden by an
environment variable of the same name.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def instance_secret_key(instance_path: str) -> str:
    """Return the key kept in ``instance/secret_key``, generating it on first use."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def from_environment(instance_path: str) -> dict[str, object]:
    """Build the configuration mapping for ``create_app``."""
    database_url = os.environ.get("DATABASE_URL") or (
        "sqlite:///" + str(Path(instance_path) / "memberplatform.sqlite3")
    )
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or instance_secret_key(instance_path),
        "DATABASE_URL": database_url,
        "SQLITE_BUSY_TIMEOUT": _int("SQLITE_BUSY_TIMEOUT", 20),
        "DATABASE_POOL_SIZE": _int("DATABASE_POOL_SIZE", 10),
        "DATABASE_MAX_OVERFLOW": _int("DATABASE_MAX_OVERFLOW", 10),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "swept-memory://"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": _int("REMEMBER_DAYS", 30) * 24 * 3600,
        "PERMANENT_SESSION_LIFETIME": _int("SESSION_HOURS", 12) * 3600,
        # An unchanged session cookie is re-issued (sliding its expiry) at most this often.
        "SESSION_REFRESH_SECONDS": _int("SESSION_REFRESH_SECONDS", 300),
        "PREFERRED_URL_SCHEME": "https" if _bool("SESSION_COOKIE_SECURE", False) else "http",
        "BABEL_DEFAULT_LOCALE": os.environ.get("DEFAULT_LOCALE", "zh_CN"),
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("TIME_ZONE", "Asia/Shanghai"),
        "SELF_REGISTRATION": _bool("SELF_REGISTRATION", False),
        # Hours a member promoted from a course/exam waitlist has to confirm (0: at once).
        "COURSE_PROMOTION_HOURS": _int("COURSE_PROMOTION_HOURS", 0),
        # Days a kit pickup reservation is held before kits-release-expired frees it.
        "KIT_RESERVATION_DAYS": _int("KIT_RESERVATION_DAYS", 3),
        # scrypt N=2^17, r=8, p=1 meets OWASP ASVS 5 (V11.4.2); tests use a cheaper one.
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt:131072:8:1"),
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_MB", 10) * 1024 * 1024,
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER") or str(Path(instance_path) / "uploads"),
        # Per-user limit on the write endpoints a bot would hammer (claims, donations…).
        "WRITE_LIMIT": os.environ.get("WRITE_LIMIT", "30/minute;300/hour"),
        # Fernet keys for fields encrypted at rest (ID numbers), newest first, comma-separated.
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS", ""),
        "FIELD_INDEX_KEY": os.environ.get("FIELD_INDEX_KEY", ""),
        # Seconds each worker keeps aggregate figures (home cards, console panels); 0 = off.
        "FIGURES_CACHE_SECONDS": _int("FIGURES_CACHE_SECONDS", 30),
        # Seconds each worker keeps what every viewer of a busy page sees alike (a
        # campaign's live progress, the kits' catalogue, the legal menu…): core.cache.
        "PROGRESS_CACHE_SECONDS": _int("PROGRESS_CACHE_SECONDS", 2),
        # Hours a password-reset link made by staff stays valid.
        "PASSWORD_RESET_HOURS": _int("PASSWORD_RESET_HOURS", 72),
        # Per-file limit of legal request attachments (3 files × 3 MB stay under the upload cap).
        "LEGAL_ATTACHMENT_MAX_MB": _int("LEGAL_ATTACHMENT_MAX_MB", 3),
        "LOGIN_LIMIT_IP": os.environ.get("LOGIN_LIMIT_IP", "10/minute"),
        "LOGIN_LIMIT_ACCOUNT": os.environ.get("LOGIN_LIMIT_ACCOUNT", "100/hour;10/minute"),
        # Number of reverse proxies in front (nginx: 1) whose X-Forwarded-* to trust.
        "PROXY_COUNT": _int("PROXY_COUNT", 0),
    }
