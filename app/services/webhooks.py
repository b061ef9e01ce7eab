"""Webhook subscriptions and deliveries, signed per Standard Webhooks.

Headers: ``webhook-id`` (stable across retries, so receivers can dedupe),
``webhook-timestamp`` (unix seconds) and ``webhook-signature``:
``v1,<base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))>`` where the secret is the
base64 part after ``whsec_``. Timeouts, connection errors, 5xx and 429 are retried with
exponential backoff; any other answer is final. Every attempt is recorded, its error as a
category (ERROR_CATEGORIES), never the raw socket message (that goes to the server log).

Destinations are public addresses only (app.services.egress), checked at registration and
again at every delivery; a delivery is claimed before it is sent, so two workers never send
the same delivery at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.core.errors import IdrError, NotFoundError
from app.core.timefmt import rfc3339
from app.db.models import Webhook, WebhookAttempt, WebhookDelivery, now_utc
from app.services import egress, secretbox
from app.services.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

EVENTS = ("run.succeeded", "run.failed", "dry_run.completed", "cluster.large_detected", "erasure.completed")
ALL_EVENTS = "*"  # a subscription to every event, including ones added later


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# What a failed attempt records (the delivery log an admin reads).
ERROR_CATEGORIES = {
    "timeout": "the receiver did not answer in time",
    "dns_failure": "the host name did not resolve",
    "address_refused": "the host resolved to a non-public address (see IDR_WEBHOOK_ALLOW_HOSTS)",
    "connection_failed": "no connection could be made",
    "tls_error": "the TLS handshake or certificate check failed",
    "protocol_error": "the receiver's answer was not valid HTTP",
}


def _check(url: str, events: list[str], allow: str = "") -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise IdrError("url must be an absolute http(s) URL", field="url")
    egress.check(url, allow)
    bad = [e for e in events if e not in EVENTS and e != ALL_EVENTS]
    if bad or not events:
        raise IdrError(
            f"events must be a non-empty list of: {', '.join(EVENTS)}; or [\"{ALL_EVENTS}\"] for every event",
            field="events",
        )


def create_subscription(
    rt: Runtime, url: str, events: list[str], description: str | None = None, principal: Any = None
) -> tuple[Webhook, str]:
    _check(url, events, rt.settings.webhook_allow_hosts)
    secret = new_secret()
    with rt.session() as s:
        wh = Webhook(
            id="wh_" + secrets.token_hex(10),
            url=url,
            events=sorted(set(events)),
            description=description,
            secret=secretbox.encrypt(rt.settings, secret),
            active=True,
            created_at=now_utc(),
        )
        s.add(wh)
        _audit(s, principal, "webhook.create", wh.id, {"url": url, "events": wh.events, "description": description})
    return wh, secret


def _audit(s: Session, principal: Any, action: str, webhook_id: str, diff: dict[str, Any]) -> None:
    from app.services import audit

    audit.record(
        s, kind="webhook", action=action, actor=principal.name if principal else audit.local_actor(),
        key_id=principal.key_id if principal else None, subject=webhook_id, diff=diff,
    )  # fmt: skip


def list_subscriptions(rt: Runtime) -> list[Webhook]:
    with rt.session() as s:
        return list(s.scalars(select(Webhook).where(Webhook.active).order_by(Webhook.created_at, Webhook.id)))


def get_subscription(rt: Runtime, webhook_id: str) -> Webhook:
    with rt.session() as s:
        wh = s.get(Webhook, webhook_id)
        if wh is None or not wh.active:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        return wh


def delete_subscription(rt: Runtime, webhook_id: str, principal: Any = None) -> None:
    with rt.session() as s:
        wh = s.get(Webhook, webhook_id)
        if wh is None or not wh.active:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        # Soft delete: the delivery history stays readable for audit; no new deliveries.
        wh.active = False
        _audit(s, principal, "webhook.delete", webhook_id, {"url": wh.url, "events": wh.events})


def list_deliveries(
    rt: Runtime, webhook_id: str, limit: int = 50
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    get_subscription(rt, webhook_id)
    with rt.session() as s:
        ds = list(
            s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                .limit(limit)
            )
        )
        out = []
        for d in ds:
            atts = list(
                s.scalars(
                    select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id).order_by(WebhookAttempt.attempt)
                )
            )
            out.append((d, atts))
        return out


def create_deliveries(session: Session, event: str, data: dict[str, Any]) -> list[str]:
    """One delivery per active subscription to ``event``, in the caller's transaction."""
    ids = []
    for wh in session.scalars(select(Webhook).where(Webhook.active)):
        if event not in (wh.events or []) and ALL_EVENTS not in (wh.events or []):
            continue
        msg_id = "msg_" + secrets.token_hex(12)
        now = now_utc()
        body = json.dumps(
            {"type": event, "timestamp": rfc3339(now), "data": data},
            separators=(",", ":"),
            default=str,
        )
        session.add(
            WebhookDelivery(
                id=msg_id,
                webhook_id=wh.id,
                event=event,
                payload=body,
                status="PENDING",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        ids.append(msg_id)
    return ids


def backoff(settings, attempt: int) -> float:
    return min(settings.webhook_backoff_seconds * 2 ** (attempt - 1), settings.webhook_backoff_max_seconds)


def _claim(rt: Runtime, delivery_id: str) -> bool:
    """Hold a PENDING delivery for one attempt (compare-and-set): a second worker handed the
    same delivery (a redispatch beside a countdown, a redelivered task) finds it held."""
    now = now_utc()
    hold = timedelta(seconds=rt.settings.webhook_timeout_seconds * 2 + 30)
    with rt.session() as s:
        res = s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "PENDING",
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
            .values(claimed_until=now + hold)
            .execution_options(synchronize_session=False)
        )
        return res.rowcount == 1


def _categorise(e: Exception) -> str:
    if isinstance(e, egress.EgressRefused):
        return "dns_failure" if "does not resolve" in e.message else "address_refused"
    if isinstance(e, httpx.TimeoutException):
        return "timeout"
    if isinstance(e, httpx.ConnectError):
        text = str(e).lower()
        return "tls_error" if "ssl" in text or "certificate" in text or "tls" in text else "connection_failed"
    return "protocol_error"


def _post(dest: egress.Destination, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST to the address that was checked (not a fresh lookup), with the URL's host in the
    Host header and, for https, in SNI and the certificate check."""
    parts = urlsplit(dest.url)
    ip = dest.address if ":" not in dest.address else f"[{dest.address}]"
    pinned = parts._replace(netloc=f"{ip}:{dest.port}").geturl()
    extensions = {"sni_hostname": dest.host} if parts.scheme == "https" else {}
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return client.post(
            pinned, content=body, headers={**headers, "host": parts.netloc.rsplit("@", 1)[-1]}, extensions=extensions
        )


def deliver(delivery_id: str) -> str:
    """Task ``idr.deliver_webhook``: one attempt; re-sends itself with a countdown to retry."""
    rt = get_runtime()
    st = rt.settings
    with rt.session() as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None or d.status != "PENDING":
            return d.status if d else "missing"
        wh = s.get(Webhook, d.webhook_id)
        if wh is None or not wh.active:
            d.status = "FAILED"
            d.completed_at = now_utc()
            return "FAILED"
        url, stored_secret, body, attempt = wh.url, wh.secret, d.payload, d.attempts + 1
    secret = secretbox.decrypt(st, stored_secret)
    if not _claim(rt, delivery_id):
        return "claimed-elsewhere"
    ts = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "idr-webhooks/1",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, delivery_id, ts, body),
    }
    code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    t0 = time.perf_counter()
    try:
        # Checked again now: the name may point elsewhere than at registration (rebinding).
        dest = egress.check(url, st.webhook_allow_hosts)
        resp = _post(dest, body.encode(), headers, st.webhook_timeout_seconds)
        code = resp.status_code
        ra = resp.headers.get("retry-after")
        if code == 429 and ra and ra.isdigit():
            retry_after = float(ra)
    except (httpx.HTTPError, egress.EgressRefused) as e:
        error = _categorise(e)
        log.warning("webhook %s attempt %d: %s (%s)", delivery_id, attempt, error, e)
    ms = (time.perf_counter() - t0) * 1000
    if code is not None and 200 <= code < 300:
        outcome = "success"
    elif error == "address_refused":
        outcome = "failed"  # the destination is not allowed; retrying would not change that
    elif error is not None or code == 429 or (code is not None and code >= 500):
        outcome = "retry" if attempt < st.webhook_max_attempts else "failed"
    else:
        outcome = "failed"  # other 4xx: the receiver rejected it; retrying would not help
    countdown = None
    with rt.session() as s:
        d = s.get(WebhookDelivery, delivery_id)
        s.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempt=attempt,
                at=now_utc(),
                outcome=outcome,
                status_code=code,
                error=error,
                duration_ms=ms,
            )
        )
        d.attempts = attempt
        d.claimed_until = None
        if outcome == "retry":
            countdown = max(backoff(st, attempt), retry_after or 0.0)
            d.next_attempt_at = now_utc() + timedelta(seconds=countdown)
        else:
            d.status = "SUCCEEDED" if outcome == "success" else "FAILED"
            d.completed_at = now_utc()
            d.next_attempt_at = None
    if countdown is not None:
        rt.send("idr.deliver_webhook", [delivery_id], countdown=countdown)
    log.info("webhook %s attempt %d -> %s (%s)", delivery_id, attempt, outcome, code or error)
    return outcome


def redispatch_overdue(rt: Runtime | None = None, min_age_seconds: float = 300.0) -> int:
    """Re-send PENDING deliveries whose scheduled attempt is overdue (a lost countdown)."""
    rt = rt or get_runtime()
    cutoff = now_utc() - timedelta(seconds=min_age_seconds)
    with rt.session() as s:
        ids = list(
            s.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == "PENDING", WebhookDelivery.next_attempt_at <= cutoff
                )
            )
        )
    for i in ids:
        rt.send("idr.deliver_webhook", [i])
    return len(ids)
