"""Webhook signing secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
under keys from ``IDR_WEBHOOK_SECRET_KEYS``.

The setting is a comma-separated list of Fernet keys: the first encrypts, every one
decrypts. Rotation: put a new key first (``idr webhooks new-key`` prints one), restart,
run ``idr webhooks rotate-secrets`` (re-encrypts every secret under the first key), then
drop the old key from the list. A process refuses to start without a key once a webhook
exists (it could neither sign nor tell a wrong key from a missing one later).
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import ConfigError, UnavailableError
from app.core.settings import Settings
from app.db.models import Webhook

log = logging.getLogger(__name__)

PREFIX = "fernet:"


def new_key() -> str:
    return Fernet.generate_key().decode()


def _box(settings: Settings) -> MultiFernet | None:
    raw = settings.webhook_secret_keys.get_secret_value() if settings.webhook_secret_keys else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError):
        raise ConfigError(
            "IDR_WEBHOOK_SECRET_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes each; "
            "`idr webhooks new-key` prints one)",
            field="webhook_secret_keys",
        ) from None


def encrypt(settings: Settings, secret: str) -> str:
    box = _box(settings)
    if box is None:
        raise UnavailableError(
            "webhook secrets are stored encrypted: set IDR_WEBHOOK_SECRET_KEYS (`idr webhooks new-key` prints a key)"
        )
    return PREFIX + box.encrypt(secret.encode()).decode()


def decrypt(settings: Settings, stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption; encrypt_plaintext() converts it at start-up
    box = _box(settings)
    if box is None:
        raise UnavailableError("webhook secrets are encrypted and IDR_WEBHOOK_SECRET_KEYS is not set")
    try:
        return box.decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ConfigError(
            "a webhook secret does not decrypt with any key in IDR_WEBHOOK_SECRET_KEYS (was a key dropped "
            "before `idr webhooks rotate-secrets`?)",
            field="webhook_secret_keys",
        ) from None


def rotate(settings: Settings, session: Session) -> int:
    """Re-encrypt every stored secret under the first key (and any plain one). Returns how many."""
    box = _box(settings)
    if box is None:
        raise ConfigError("IDR_WEBHOOK_SECRET_KEYS is not set", field="webhook_secret_keys")
    n = 0
    for wh in session.scalars(select(Webhook)):
        plain = decrypt(settings, wh.secret)
        wh.secret = PREFIX + box.encrypt(plain.encode()).decode()
        n += 1
    return n


def require_key(settings: Settings, session: Session) -> None:
    """Start-up: with webhooks stored, a key is required and must read them (ConfigError)."""
    stored = session.scalars(select(Webhook.secret)).first()
    if stored is None:
        return
    if _box(settings) is None:
        n = len(list(session.scalars(select(Webhook.id))))
        raise ConfigError(
            f"{n} webhook(s) are stored and IDR_WEBHOOK_SECRET_KEYS is not set: their signing secrets "
            "are kept encrypted under it (README: Webhook secrets)",
            field="webhook_secret_keys",
        )
    decrypt(settings, stored)  # a wrong key fails here, not at the first delivery


def encrypt_plaintext(settings: Settings, session: Session) -> int:
    """Start-up, after migrations: secrets stored in plain text (before encryption) are encrypted."""
    box = _box(settings)
    if box is None:
        return 0
    plain = [wh for wh in session.scalars(select(Webhook)) if not wh.secret.startswith(PREFIX)]
    for wh in plain:
        wh.secret = PREFIX + box.encrypt(wh.secret.encode()).decode()
    if plain:
        log.info("encrypted %d webhook secret(s) stored in plain text", len(plain))
    return len(plain)


def check_at_start(settings: Settings, session: Session) -> None:
    require_key(settings, session)
    encrypt_plaintext(settings, session)
