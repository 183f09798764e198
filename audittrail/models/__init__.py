"""The database tables, one module per entity."""

from audittrail.models.action import DeploymentAction
from audittrail.models.api_key import ApiKey
from audittrail.models.approval import ActionApproval
from audittrail.models.audit_event import AuditEvent
from audittrail.models.checkpoint import AuditCheckpoint
from audittrail.models.idempotency import IdempotencyRecord
from audittrail.models.revoked_token import RevokedToken
from audittrail.models.run import Run
from audittrail.models.run import RunRef
from audittrail.models.user import User
from audittrail.models.webhook import Webhook
from audittrail.models.webhook import WebhookDelivery
from audittrail.models.workspace import GENESIS_HASH
from audittrail.models.workspace import Workspace

__all__ = [
    "GENESIS_HASH",
    "ActionApproval",
    "ApiKey",
    "AuditCheckpoint",
    "AuditEvent",
    "DeploymentAction",
    "IdempotencyRecord",
    "RevokedToken",
    "Run",
    "RunRef",
    "User",
    "Webhook",
    "WebhookDelivery",
    "Workspace",
]
