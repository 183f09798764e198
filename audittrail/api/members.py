"""Members and their roles, and the workspace's approval policy (policy.md §2)."""

from __future__ import annotations

from flask import jsonify

from audittrail.api import bp
from audittrail.api.common import operation
from audittrail.auth import current_principal
from audittrail.auth import now
from audittrail.domain import Capability
from audittrail.domain import Role
from audittrail.domain import TierRule
from audittrail.schemas import MemberListSchema
from audittrail.schemas import MemberSchema
from audittrail.schemas import MemberUpdateSchema
from audittrail.schemas import PolicyReplaceSchema
from audittrail.schemas import PolicySchema
from audittrail.services import members
from audittrail.services import policy

_ADMIN_ERRORS = ["unauthorized", "forbidden", "csrf_failed"]


@bp.get("/members")
@operation(responses={200: MemberListSchema}, errors=["unauthorized"], tags=["members"])
def list_members():
    """The members of your workspace, with their roles."""
    return jsonify(MemberListSchema().dump({"items": members.list_members(current_principal().actor)}))


@bp.patch("/members/<member_id>")
@operation(
    auth="jwt",
    capability=Capability.MANAGE_MEMBERS,
    body=MemberUpdateSchema,
    responses={200: MemberSchema},
    errors=[*_ADMIN_ERRORS, "not_found", "last_admin"],
    tags=["members"],
)
def update_member(member_id, body):
    """Change a member's role (admins, with a JWT); the last admin cannot be demoted."""
    member = members.change_role(current_principal().actor, member_id, Role(body["role"]), now())
    return jsonify(MemberSchema().dump(member))


@bp.get("/policy")
@operation(responses={200: PolicySchema}, errors=["unauthorized"], tags=["policy"])
def get_policy():
    """The approval policy: per tier, how many approvals from which roles."""
    return jsonify(PolicySchema().dump(policy.get_policy(current_principal().actor)))


@bp.put("/policy")
@operation(
    auth="jwt",
    capability=Capability.MANAGE_POLICY,
    body=PolicyReplaceSchema,
    dotted_errors=True,
    responses={200: PolicySchema},
    errors=_ADMIN_ERRORS,
    tags=["policy"],
)
def replace_policy(body):
    """Replace the whole policy (admins, with a JWT); pending actions keep the rule they were proposed under."""
    tiers = {int(tier): TierRule.from_dict(rule) for tier, rule in body["tiers"].items()}
    document = policy.replace_policy(current_principal().actor, tiers, now())
    return jsonify(PolicySchema().dump(document))
