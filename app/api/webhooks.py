"""/v1/webhooks: subscriptions (secret shown once) and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import Admin, Rt, problems
from app.api.schemas import DeliveryList, DeliveryOut, WebhookCreate, WebhookCreated, WebhookList, WebhookOut
from app.services import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=problems())

WebhookId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("", status_code=201, response_model=WebhookCreated)
def create(body: WebhookCreate, rt: Rt, principal: Admin, response: Response) -> WebhookCreated:
    """Subscribe a URL to events. The signing secret is in this response only."""
    wh, secret = webhooks.create_subscription(rt, body.url, list(body.events), body.description, principal)
    response.headers["Location"] = f"/v1/webhooks/{wh.id}"
    return WebhookCreated(**WebhookOut.of(wh).model_dump(), secret=secret)


@router.get("", response_model=WebhookList)
def list_all(rt: Rt, _: Admin) -> WebhookList:
    return WebhookList(items=[WebhookOut.of(w) for w in webhooks.list_subscriptions(rt)])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=problems(404))
def get(webhook_id: WebhookId, rt: Rt, _: Admin) -> WebhookOut:
    return WebhookOut.of(webhooks.get_subscription(rt, webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=problems(404), response_class=Response)
def delete(webhook_id: WebhookId, rt: Rt, principal: Admin) -> Response:
    webhooks.delete_subscription(rt, webhook_id, principal)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=problems(404))
def deliveries(
    webhook_id: WebhookId, rt: Rt, _: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> DeliveryList:
    """Newest first, each with every attempt (time, outcome, HTTP status or error)."""
    return DeliveryList(items=[DeliveryOut.of(d, a) for d, a in webhooks.list_deliveries(rt, webhook_id, limit)])
