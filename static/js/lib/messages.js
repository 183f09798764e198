// Plain words for the API's error codes (contract §6), written for an operator mid-incident.

import { rolesPhrase } from './format.js';

const TRANSITION_VERBS = {
  approve: 'approve',
  reject: 'reject',
  'mark-executed': 'mark as executed',
};

function pluralSeconds(seconds) {
  return seconds === 1 ? '1 second' : `${seconds} seconds`;
}

function fieldProblems(details) {
  if (!details || typeof details !== 'object') return '';
  const fields = details.fields && typeof details.fields === 'object' ? details.fields : details;
  const parts = [];
  for (const [field, problems] of Object.entries(fields)) {
    let text = String(problems);
    if (Array.isArray(problems)) text = problems.join(' ');
    else if (problems && typeof problems === 'object') text = JSON.stringify(problems);
    parts.push(`${field}: ${text}`);
  }
  return parts.join('; ');
}

/** A sentence for an ApiError raised while asking for `transition` on an action. */
export function describeTransitionError(error, transition) {
  const verb = TRANSITION_VERBS[transition] || transition;
  switch (error.code) {
    case 'expired':
      return `Too late to ${verb}: the approval window of this action has passed, so it is now Expired.`;
    case 'second_approver_required':
      return 'You proposed this action (yourself or through your agent, or your agent\'s owner did), so someone else must approve it.';
    case 'already_approved':
      return 'Your approval is already recorded (an agent and its owner count as one person). It needs someone else\'s approval now. The row has been reloaded.';
    case 'version_mismatch':
      return `Not done: someone changed this action since you opened it. The row now shows it as it is; check it and ${verb} again if you still mean to.`;
    case 'invalid_transition':
      return `Could not ${verb}: this action was already decided by someone else, or its mode does not allow it. The row has been reloaded.`;
    case 'rate_limited': {
      const seconds = error.retryAfterSeconds;
      return seconds === null
        ? 'Too many decisions in a short time. Wait a minute, then try again.'
        : `Too many decisions in a short time. Wait ${pluralSeconds(seconds)}, then try again.`;
    }
    case 'confirmation_mismatch':
      return 'The confirmation does not match the start of the target. Type it exactly as shown, same case.';
    case 'operator_reason_required':
      return 'A reason is required to approve a tier 3 action.';
    case 'validation_error': {
      const problems = fieldProblems(error.details);
      return problems ? `Some fields are not valid. ${problems}` : error.message;
    }
    case 'malformed_json':
      return `The request was not understood: ${error.message}`;
    case 'not_found':
      return 'This action no longer exists in your workspace.';
    case 'network':
      return `Cannot reach the server, so nothing was decided. Check the connection, then ${verb} again.`;
    case 'forbidden': {
      const roles = requiredRoles(error);
      return roles
        ? `Your role may not ${verb} this action: it needs ${roles}. The row has been reloaded.`
        : `You are not allowed to ${verb} this action. ${error.message}`;
    }
    default:
      return describeError(error);
  }
}

/** "Approver or Admin" from `details.required_roles`, or '' when the server named none. */
function requiredRoles(error) {
  const roles = error.details && Array.isArray(error.details.required_roles) ? error.details.required_roles : [];
  return roles.length ? rolesPhrase(roles) : '';
}

/** A sentence for an ApiError raised while changing `member`'s role. */
export function describeMemberError(error, member) {
  switch (error.code) {
    case 'last_admin':
      return `${member.name} is the last admin of this workspace, so they stay Admin. Make another member Admin first.`;
    case 'forbidden': {
      const roles = requiredRoles(error);
      return roles ? `Only ${roles} may change roles.` : `You may not change roles. ${error.message}`;
    }
    case 'not_found':
      return `${member.name} is no longer a member of this workspace.`;
    case 'validation_error': {
      const problems = fieldProblems(error.details);
      return problems ? `The role was not accepted. ${problems}` : error.message;
    }
    case 'network':
      return `Cannot reach the server, so ${member.name}'s role did not change. Check the connection, then try again.`;
    default:
      return describeError(error);
  }
}

/** A sentence for an ApiError raised while saving the approval policy (field errors aside). */
export function describePolicyError(error) {
  switch (error.code) {
    case 'validation_error':
      return 'The policy was not saved: correct the marked fields.';
    case 'forbidden': {
      const roles = requiredRoles(error);
      return roles ? `Only ${roles} may change the approval policy.` : `You may not change the policy. ${error.message}`;
    }
    case 'network':
      return 'Cannot reach the server, so the policy was not saved. Check the connection, then save again.';
    default:
      return describeError(error);
  }
}

/**
 * The 422 `details` as {dotted field: "sentence"}: `{"tiers.3.allow_self_approval": [..]}`
 * as sent, and nested objects (`{"tiers": {"3": {...}}}`) flattened to the same keys.
 */
export function fieldErrors(details) {
  const flat = {};
  const visit = (value, path) => {
    if (Array.isArray(value)) {
      if (value.every((item) => typeof item === 'string')) flat[path] = value.join(' ');
      else value.forEach((item, index) => visit(item, path ? `${path}.${index}` : String(index)));
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) visit(inner, path ? `${path}.${key}` : key);
    } else if (value !== undefined && value !== null) {
      flat[path] = String(value);
    }
  };
  const fields = details && details.fields && typeof details.fields === 'object' ? details.fields : details;
  visit(fields || {}, '');
  return flat;
}

/** A sentence for an ApiError raised while proposing an action (from a run's node menu). */
export function describeProposalError(error) {
  switch (error.code) {
    case 'validation_error': {
      const problems = fieldProblems(error.details);
      return problems ? `The proposal was not accepted: ${problems}` : error.message;
    }
    case 'forbidden': {
      const roles = requiredRoles(error);
      return roles ? `Only ${roles} may propose actions.` : `You may not propose actions. ${error.message}`;
    }
    case 'network':
      return 'Cannot reach the server, so nothing was proposed. Check the connection, then try again.';
    case 'rate_limited':
      return describeTransitionError(error, '');
    default:
      return describeError(error);
  }
}

/** A sentence for any ApiError (network, server, session). */
export function describeError(error) {
  switch (error.code) {
    case 'network':
      return 'Cannot reach the server. Check the connection; the page will keep trying.';
    case 'unauthorized':
    case 'csrf_failed':
      return 'Your session has ended. Sign in again.';
    case 'rate_limited':
      return describeTransitionError(error, '');
    case 'service_unavailable':
      return 'The server is temporarily unavailable. Try again in a few seconds.';
    case 'last_admin':
      return 'A workspace keeps at least one admin. Make another member Admin first.';
    case 'already_approved':
      return describeTransitionError(error, 'approve');
    default:
      return error.message || 'Something went wrong.';
  }
}
