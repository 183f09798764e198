// Plain words for the API's error codes (contract §6), written for an operator mid-incident.

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
      return 'You proposed this tier 3 action, so someone else must approve it.';
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
    case 'forbidden':
      return `You are not allowed to ${verb} this action. ${error.message}`;
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
    default:
      return error.message || 'Something went wrong.';
  }
}
