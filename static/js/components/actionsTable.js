// The actions table (the tab panel): one focusable row per action, newest first, its
// buttons exactly the action's `allowed_transitions`, "Load more" through `next_cursor`,
// and a quiet refresh every 15 s while no dialog is open.

import { rowOf } from '../lib/focus.js';
import { absoluteTime } from '../lib/format.js';
import { approvalProgress } from '../lib/format.js';
import { approverNames } from '../lib/format.js';
import { hasApprovalProgress } from '../lib/format.js';
import { modeLabel } from '../lib/format.js';
import { relativeTime } from '../lib/format.js';
import { statusLabel } from '../lib/format.js';
import { transitionLabel } from '../lib/format.js';
import { REFRESH_INTERVAL_MS } from '../stores/queue.js';

// What a tier 3 approver must type comes from the server (`confirmation_text`), which also
// checks the typed value again; here it only gates the dialog's button.

const EMPTY_MESSAGES = {
  all: 'No deployment actions in this workspace yet.',
  proposed: 'Nothing is waiting for a decision.',
  approved: 'No approved actions are waiting for the runner.',
  executed: 'No actions have been executed.',
  rejected: 'No actions have been rejected.',
  expired: 'No actions have expired.',
};

const TRANSITION_CLASSES = {
  approve: 'button-primary',
  reject: 'button-danger-outline',
  'mark-executed': 'button-secondary',
};

export default function actionsTable() {
  return {
    timer: null,

    init() {
      // Polling is the fallback: while the stream is live, the refresh skips itself.
      this.timer = window.setInterval(() => this.$store.queue.refresh(), REFRESH_INTERVAL_MS);
      this.$store.live.start();
    },

    destroy() {
      window.clearInterval(this.timer);
    },

    get items() {
      return this.$store.queue.items;
    },

    get isLoading() {
      return this.$store.queue.state === 'loading';
    },

    get loadState() {
      return this.$store.queue.state;
    },

    get hasFailed() {
      return this.$store.queue.state === 'failed';
    },

    get isEmpty() {
      return this.$store.queue.state === 'ready' && this.items.length === 0;
    },

    get emptyMessage() {
      return EMPTY_MESSAGES[this.$store.queue.status];
    },

    get tabId() {
      return `tab-${this.$store.queue.status}`;
    },

    get canLoadMore() {
      return Boolean(this.$store.queue.nextCursor);
    },

    get loadMoreLabel() {
      return this.$store.queue.loadingMore ? 'Loading…' : 'Load more';
    },

    get isLoadingMore() {
      return this.$store.queue.loadingMore;
    },

    retry() {
      this.$store.queue.load();
    },

    loadMore() {
      this.$store.queue.loadMore();
    },

    rowClass(action) {
      return {
        'is-open': this.$store.ui.openActionId === action.id,
        // Rows the caller can do nothing with read quieter (what is allowed is the server's call).
        'is-settled': action.allowed_transitions.length === 0,
      };
    },

    rowLabel(action) {
      const progress = this.showsApprovals(action) ? `, ${approvalProgress(action)}` : '';
      return `${action.action_type} on ${action.target_ref}, ${statusLabel(action.status)}${progress}. Press Enter for details.`;
    },

    /**
     * A proposed row that needs several approvals, or has some already: "1 of 2 approvals".
     * Not on a dry run: it is never approved, so a count would promise what cannot happen.
     */
    showsApprovals(action) {
      return action.status === 'proposed' && action.mode !== 'dry_run' && hasApprovalProgress(action);
    },

    approvalProgress(action) {
      return approvalProgress(action);
    },

    approverNames(action) {
      return approverNames(action);
    },

    hasApproverNames(action) {
      return this.showsApprovals(action) && approverNames(action) !== '';
    },

    approversTitle(action) {
      const names = approverNames(action);
      return names ? `Approved so far by ${names}` : 'No approval yet';
    },

    tierLabel(action) {
      return `T${action.tier}`;
    },

    tierClass(action) {
      return `tier tier-${action.tier}`;
    },

    tierTitle(action) {
      return `Tier ${action.tier}`;
    },

    statusLabel(action) {
      return statusLabel(action.status);
    },

    statusClass(action) {
      return `pill pill-${action.status}`;
    },

    modeLabel(action) {
      return modeLabel(action.mode);
    },

    isDryRun(action) {
      return action.mode === 'dry_run';
    },

    isNotDryRun(action) {
      return action.mode !== 'dry_run';
    },

    relativeTime(iso) {
      return relativeTime(iso, this.$store.ui.now);
    },

    absoluteTime(iso) {
      return absoluteTime(iso);
    },

    hasNoTransitions(action) {
      return action.allowed_transitions.length === 0;
    },

    transitionLabel(transition) {
      return transitionLabel(transition);
    },

    transitionClass(transition) {
      return `button button-small ${TRANSITION_CLASSES[transition] || ''}`;
    },

    transitionAriaLabel(action, transition) {
      return `${transitionLabel(transition)} ${action.action_type} on ${action.target_ref}`;
    },

    openDrawer(action) {
      this.$dispatch('open-drawer', { id: action.id });
    },

    /** Open the dialog for a row button; tier 3 approval goes through ConfirmTypedDialog. */
    requestTransition(action, transition) {
      if (transition === 'approve' && action.requires_confirmation) {
        this.requestTypedApproval(action);
        return;
      }
      this.$dispatch('transition-requested', { action, transition });
    },

    requestTypedApproval(action) {
      const confirmation = action.confirmation_text;
      this.$dispatch('confirm-typed-open', {
        title: `Approve tier ${action.tier}: ${action.action_type}`,
        description:
          'Tier 3 changes act on a live fleet and need a second person. Check the target, then type its first characters to confirm.',
        facts: [
          { label: 'Target', value: action.target_ref, mono: true },
          { label: 'Mode', value: modeLabel(action.mode) },
          { label: 'Proposed by', value: action.proposed_by ? action.proposed_by.name : '—' },
          { label: 'Reason', value: action.reason },
        ],
        text: confirmation,
        reasonRequired: true,
        reasonLabel: 'Operator reason (recorded in the audit trail)',
        confirmLabel: 'Approve',
        busyLabel: 'Approving…',
        onConfirm: ({ typed, reason }) =>
          this.$store.queue.perform(action, 'approve', { confirmation: typed, note: reason }),
        fallbackFocus: () => rowOf(action.id),
      });
    },
  };
}
