"""Typed service errors, each carrying the contract's error code (§6 Errors).

The mapping from code to HTTP status lives in audittrail.errors, not here.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: `code` is the contract's error code, `details` names fields where useful."""

    code = "internal_error"
    default_message = "Something went wrong."

    def __init__(self, message: str | None = None, details: dict | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailed(ServiceError):
    code = "validation_error"
    default_message = "The request has invalid fields."


class Unauthorized(ServiceError):
    code = "unauthorized"
    default_message = "Missing, invalid, expired or revoked credentials."


class Forbidden(ServiceError):
    code = "forbidden"
    default_message = "These credentials may not do this."


class CsrfFailed(ServiceError):
    code = "csrf_failed"
    default_message = "Cookie-authenticated requests that change state need the X-CSRF-TOKEN header."


class NotFound(ServiceError):
    code = "not_found"
    default_message = "Not found."


class ActionNotFound(NotFound):
    default_message = "No deployment action with this id in your workspace."


class RunNotFound(NotFound):
    default_message = "No run with this id in your workspace."


class ApiKeyNotFound(NotFound):
    default_message = "No API key with this id in your workspace."


class InvalidTransition(ServiceError):
    code = "invalid_transition"
    default_message = "This action cannot make that transition from its current status or mode."


class ActionExpired(ServiceError):
    code = "expired"
    default_message = "The approval window of this action has passed; it is now expired."
    # The row was flipped to `expired` in the same unit of work: that change is kept (§4).
    keeps_changes = True


class AlreadyApproved(ServiceError):
    code = "already_approved"
    default_message = "You (or your agent, or its owner) have already approved this action."


class VersionMismatch(ServiceError):
    code = "version_mismatch"
    default_message = "This action has changed since you read it; here is its current version, read it again."

    def __init__(self, current_version: int):
        super().__init__(details={"current_version": current_version})


class LastAdmin(ServiceError):
    code = "last_admin"
    default_message = "A workspace needs at least one admin: promote someone else first."


class MemberNotFound(NotFound):
    default_message = "No member with this id in your workspace."


class SecondApproverRequired(ServiceError):
    code = "second_approver_required"
    default_message = "This action must be approved by someone other than its proposer."


class ConfirmationMismatch(ServiceError):
    code = "confirmation_mismatch"
    default_message = "Type the first 8 characters of the target ref exactly to approve a tier 3 action."


class OperatorReasonRequired(ServiceError):
    code = "operator_reason_required"
    default_message = "A tier 3 approval needs a reason in `note`."


class IdempotencyKeyReused(ServiceError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used with a different request body."


class DigestMismatch(ServiceError):
    code = "digest_mismatch"
    default_message = "The digest sent is not this action's: what would be executed is not what was approved."


class EmptyChain(ServiceError):
    code = "empty_chain"
    default_message = "The audit chain of this workspace has no events yet: there is nothing to checkpoint."


class DemoLoginDisabled(NotFound):
    default_message = "Demo login is turned off on this instance."


# The domain's refusals (audittrail.domain.decisions), by code.
ERROR_FOR_REFUSAL: dict[str, type[ServiceError]] = {
    error.code: error
    for error in (
        Forbidden,
        InvalidTransition,
        ActionExpired,
        SecondApproverRequired,
        AlreadyApproved,
        ConfirmationMismatch,
        OperatorReasonRequired,
    )
}


def error_for(refusal) -> ServiceError:
    """The service error that carries a domain refusal."""
    return ERROR_FOR_REFUSAL[refusal.code](refusal.message, refusal.details)


class WebhookNotFound(NotFound):
    default_message = "No webhook with this id in your workspace."
