"""OpenAPI links of a run's life: create → poll → review the dry run → apply → poll.

They tell a client (and schemathesis' stateful run, tests/service/test_contract.py) which
answer feeds which operation. Operation ids are FastAPI's, derived from the route functions.
"""

from __future__ import annotations

from typing import Any

GET_RUN = "get_run_v1_runs__run_id__get"
CANCEL_RUN = "cancel_run_v1_runs__run_id__cancel_post"
SUMMARY = "summary_v1_dry_runs__run_id__summary_get"
CHANGES = "changes_v1_dry_runs__run_id__changes_get"
CLUSTERS = "clusters_v1_dry_runs__run_id__clusters_get"
APPLY = "apply_v1_dry_runs__run_id__apply_post"


def _to(operation_id: str, run_id: str, description: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {"run_id": run_id}, "description": description}


_BODY_ID = "$response.body#/id"

# A created (or applied) run: poll it, or cancel it.
RUN_CREATED = {
    "GetRun": _to(GET_RUN, _BODY_ID, "Poll the run until its status is terminal."),
    "CancelRun": _to(CANCEL_RUN, _BODY_ID, "Cancel the run."),
}
# A polled run: once a dry run is DRY_RUN_COMPLETE, review and apply it.
RUN_POLLED = {
    "GetDryRunSummary": _to(SUMMARY, _BODY_ID, "The dry run's summary (once DRY_RUN_COMPLETE)."),
    "GetDryRunChanges": _to(CHANGES, _BODY_ID, "The dry run's entity changes."),
    "GetDryRunClusters": _to(CLUSTERS, _BODY_ID, "The dry run's cluster changes."),
    "ApplyDryRun": _to(APPLY, _BODY_ID, "Publish the reviewed proposal as a real run."),
}
# A reviewed dry run: apply it.
DRY_RUN_REVIEWED = {
    "ApplyDryRun": _to(APPLY, "$response.body#/run_id", "Publish the reviewed proposal as a real run."),
}


def links(status: int, to: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` entry adding links to its success answer."""
    return {status: {"links": to}}
