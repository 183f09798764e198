// Display helpers shared by the components: times, JSON, labels.

/** The browser's IANA time zone (what "today" means in the KPI strip). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

const absoluteFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
});

/** "30 Nov 2026, 02:31:34 CET": the full local time, for title attributes and the drawer. */
export function absoluteTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : absoluteFormat.format(date);
}

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const UNITS = [
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/** "25 min. ago", "in 5 hr.": relative to `now` (milliseconds since the epoch). */
export function relativeTime(iso, now) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const seconds = Math.round((date.getTime() - now) / 1000);
  if (Math.abs(seconds) < 45) return seconds <= 0 ? 'just now' : 'in a few seconds';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return relativeFormat.format(Math.trunc(seconds / size), unit);
    }
  }
  return iso;
}

/** "6 h", "45 min", "30 s": a duration in seconds, short. */
export function duration(totalSeconds) {
  if (totalSeconds === null || totalSeconds === undefined) return '';
  const units = [
    ['d', 86400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ];
  const parts = [];
  let rest = totalSeconds;
  for (const [label, size] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${label}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.length ? parts.join(' ') : '0 s';
}

/** Pretty JSON for <pre> blocks. */
export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

export const STATUS_LABELS = {
  proposed: 'Proposed',
  approved: 'Approved',
  executed: 'Executed',
  rejected: 'Rejected',
  expired: 'Expired',
};

export const MODE_LABELS = {
  dry_run: 'Dry run',
  supervised: 'Supervised',
  autonomous: 'Autonomous',
};

export const TRANSITION_LABELS = {
  approve: 'Approve',
  reject: 'Reject',
  'mark-executed': 'Mark executed',
};

export const TRANSITION_DONE_LABELS = {
  approve: 'Approved',
  reject: 'Rejected',
  'mark-executed': 'Marked executed',
};

export function statusLabel(status) {
  return STATUS_LABELS[status] || status;
}

export function modeLabel(mode) {
  return MODE_LABELS[mode] || mode;
}

export function transitionLabel(transition) {
  return TRANSITION_LABELS[transition] || transition;
}

// ---- members and the approval policy (contract extension: policy.md)

/** The roles, weakest first. */
export const ROLES = ['viewer', 'operator', 'approver', 'admin'];

/** The roles a policy may name as approvers. */
export const APPROVER_ROLES = ['operator', 'approver', 'admin'];

export const ROLE_LABELS = {
  viewer: 'Viewer',
  operator: 'Operator',
  approver: 'Approver',
  admin: 'Admin',
};

export const KIND_LABELS = {
  human: 'Person',
  agent: 'Agent',
};

export function roleLabel(role) {
  return role ? ROLE_LABELS[role] || role : '';
}

export function kindLabel(kind) {
  return KIND_LABELS[kind] || kind || '';
}

/** "Operator, Approver or Admin". */
export function listOfWords(words, conjunction = 'or') {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} ${conjunction} ${words[words.length - 1]}`;
}

/** "Approver or Admin" for a list of role names. */
export function rolesPhrase(roles, conjunction = 'or') {
  return listOfWords((roles || []).map(roleLabel), conjunction);
}

// Timeline labels: the statuses, plus the events that are not a status.
export const EVENT_LABELS = {
  ...STATUS_LABELS,
  approval_recorded: 'Approval recorded',
};

export function eventLabel(type) {
  return EVENT_LABELS[type] || type;
}

/** How many approvals an action needs (1 for a representation without the field). */
export function approvalsRequired(action) {
  return action && Number.isInteger(action.approvals_required) ? action.approvals_required : 1;
}

/** How many distinct people have approved it so far. */
export function approvalsReceived(action) {
  if (!action) return 0;
  if (Number.isInteger(action.approvals_received)) return action.approvals_received;
  return Array.isArray(action.approvals) ? action.approvals.length : 0;
}

/** Whether approvals are worth showing: more than one is needed, or some are already in. */
export function hasApprovalProgress(action) {
  return approvalsRequired(action) > 1 || approvalsReceived(action) > 0;
}

/** "1 of 2 approvals". */
export function approvalProgress(action) {
  const required = approvalsRequired(action);
  return `${approvalsReceived(action)} of ${required} ${required === 1 ? 'approval' : 'approvals'}`;
}

/** "Sam Okafor, Demo Operator": who has approved, oldest first. */
export function approverNames(action) {
  const approvals = action && Array.isArray(action.approvals) ? action.approvals : [];
  return approvals.map((approval) => (approval.user ? approval.user.name : '—')).join(', ');
}
