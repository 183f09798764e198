"""An action's digest and its approval receipt (evidence.md §2, §3).

The bytes come from audittrail_evidence.canonical, the same code the offline verifier runs.
"""

from __future__ import annotations

from audittrail.domain import ActionStatus
from audittrail.models import ActionApproval
from audittrail.models import DeploymentAction
from audittrail_evidence.canonical import action_digest
from audittrail_evidence.canonical import api_time
from audittrail_evidence.jws import ISSUER
from audittrail_evidence.jws import RECEIPT_TYPE
from audittrail_evidence.jws import Keyring

# An approval is evidence while the action stands approved, and after its execution.
RECEIPT_STATUSES = frozenset({ActionStatus.APPROVED, ActionStatus.EXECUTED})


def digest_of(action: DeploymentAction) -> str:
    """The action's digest over its immutable fields, as the API serves them."""
    return action_digest(
        {
            "id": action.id,
            "workspace_id": action.workspace_id,
            "action_type": action.action_type,
            "tier": action.tier,
            "target_ref": action.target_ref,
            "reason": action.reason,
            "mode": action.mode,
            "payload": action.payload,
            "ttl_seconds": action.ttl_seconds,
            "proposed_by": action.proposed_by_id,
            "proposed_at": api_time(action.proposed_at),
            "expires_at": api_time(action.expires_at),
            "policy": action.policy,
        }
    )


def receipt_claims(action: DeploymentAction, approvals: list[ActionApproval], digest: str) -> dict | None:
    """What a receipt states, or None when there is no approval to prove.

    None before `approved`, after a rejection, and for a tier 1 action executed autonomously
    (nobody approved it).
    """
    if action.status not in RECEIPT_STATUSES or action.approved_at is None:
        return None
    approvers = [{"id": item.user_id, "name": item.user.name, "at": api_time(item.at)} for item in approvals]
    if not approvers and action.approved_by is not None:
        # Approved before approvals were recorded one by one: the approver the row names.
        approvers = [{"id": action.approved_by.id, "name": action.approved_by.name, "at": api_time(action.approved_at)}]
    return {
        "iss": ISSUER,
        "sub": action.id,
        "ws": action.workspace_id,
        "digest": digest,
        "approvers": approvers,
        "iat": int(action.approved_at.timestamp()),
    }


def approval_receipt(
    action: DeploymentAction, approvals: list[ActionApproval], digest: str, keyring: Keyring | None
) -> str | None:
    """The compact EdDSA JWS of receipt_claims, signed with the current key (None without a keyring)."""
    claims = receipt_claims(action, approvals, digest)
    if claims is None or keyring is None:
        return None
    return keyring.sign(RECEIPT_TYPE, claims)
