// The side drawer: one action in full (payload, outcome, notes, every audit timestamp
// and actor, and the event timeline from GET /api/v1/deployments/actions/{id}).
// Deep link: #action=<id>. Escape closes it and puts focus back on the row.

import { api } from '../lib/api.js';
import { rowOf } from '../lib/focus.js';
import { restoreFocus } from '../lib/focus.js';
import { absoluteTime } from '../lib/format.js';
import { approvalProgress } from '../lib/format.js';
import { approvalsRequired } from '../lib/format.js';
import { duration } from '../lib/format.js';
import { eventLabel } from '../lib/format.js';
import { hasApprovalProgress } from '../lib/format.js';
import { modeLabel } from '../lib/format.js';
import { prettyJson } from '../lib/format.js';
import { relativeTime } from '../lib/format.js';
import { rolesPhrase } from '../lib/format.js';
import { statusLabel } from '../lib/format.js';
import { describeError } from '../lib/messages.js';

const HASH_PREFIX = '#action=';

function actionIdFromHash() {
  const hash = window.location.hash;
  return hash.startsWith(HASH_PREFIX) ? decodeURIComponent(hash.slice(HASH_PREFIX.length)) : null;
}

function setHash(actionId) {
  const url = new URL(window.location.href);
  url.hash = actionId ? `action=${encodeURIComponent(actionId)}` : '';
  // replaceState: opening details is not a navigation step, and fires no hashchange.
  window.history.replaceState(window.history.state, '', url);
}

const AUDIT_STEPS = [
  { label: 'Proposed', at: 'proposed_at', by: 'proposed_by' },
  { label: 'Approved', at: 'approved_at', by: 'approved_by' },
  { label: 'Rejected', at: 'rejected_at', by: 'rejected_by' },
  { label: 'Executed', at: 'executed_at', by: 'executed_by' },
  { label: 'Expired', at: 'expired_at', by: null },
];

export default function actionDrawer() {
  return {
    open: false,
    actionId: null,
    action: null,
    loading: false,
    problem: '',
    requestSeq: 0,

    init() {
      const id = actionIdFromHash();
      if (id) this.show({ id });
    },

    async show({ id }) {
      if (this.actionId !== id) this.action = null;
      this.actionId = id;
      this.open = true;
      this.$store.ui.openActionId = id;
      setHash(id);
      this.$nextTick(() => this.$refs.heading.focus());
      await this.fetch();
    },

    async fetch() {
      const seq = ++this.requestSeq;
      this.loading = true;
      this.problem = '';
      try {
        const detail = await api.get(`/api/v1/deployments/actions/${encodeURIComponent(this.actionId)}`);
        if (seq !== this.requestSeq) return;
        this.action = detail;
      } catch (error) {
        if (seq !== this.requestSeq) return;
        this.action = null;
        this.problem =
          error.code === 'not_found' ? 'There is no action with this id in your workspace.' : describeError(error);
      } finally {
        if (seq === this.requestSeq) this.loading = false;
      }
    },

    close() {
      if (!this.open) return;
      const id = this.actionId;
      this.open = false;
      this.actionId = null;
      this.$store.ui.openActionId = null;
      setHash(null);
      this.$nextTick(() => restoreFocus(rowOf(id), document.getElementById('actions-panel')));
    },

    onEscape(event) {
      // A modal dialog on top takes the Escape for itself.
      if (!this.open || this.$store.ui.dialogOpen || event.defaultPrevented) return;
      event.preventDefault();
      this.close();
    },

    onHashChange() {
      const id = actionIdFromHash();
      if (id && id !== this.actionId) this.show({ id });
      else if (!id && this.open) this.close();
    },

    onActionUpdated(detail) {
      if (this.open && detail.id === this.actionId) this.fetch();
    },

    /** The background refresh ran: someone else may have decided the action shown here. */
    onQueueRefreshed() {
      if (this.open && !this.loading) this.fetch();
    },

    // ---- what the template shows

    get hasAction() {
      return this.action !== null;
    },

    get isLoadingFirst() {
      return this.loading && this.action === null;
    },

    get heading() {
      return this.action ? `${this.action.action_type} · ${this.action.target_ref}` : 'Action details';
    },

    get tierLabel() {
      return this.action ? `Tier ${this.action.tier}` : '';
    },

    get tierClass() {
      return this.action ? `tier tier-${this.action.tier}` : 'tier';
    },

    get statusLabel() {
      return this.action ? statusLabel(this.action.status) : '';
    },

    get statusClass() {
      return this.action ? `pill pill-${this.action.status}` : 'pill';
    },

    get modeLabel() {
      return this.action ? modeLabel(this.action.mode) : '';
    },

    get isDryRun() {
      return Boolean(this.action) && this.action.mode === 'dry_run';
    },

    get reason() {
      return this.action ? this.action.reason : '';
    },

    get ttlLabel() {
      return this.action ? duration(this.action.ttl_seconds) : '';
    },

    get expiresAt() {
      return this.action ? absoluteTime(this.action.expires_at) : '';
    },

    get shownId() {
      return this.action ? this.action.id : '';
    },

    /** The server says when the target is a known run or node ref (`run_id`): link to its graph. */
    get hasRun() {
      return Boolean(this.action && this.action.run_id);
    },

    get runUrl() {
      return this.hasRun ? `/runs/${encodeURIComponent(this.action.run_id)}` : '#';
    },

    get runLinkLabel() {
      return this.hasRun ? `Open run ${this.action.run_id}` : '';
    },

    get payloadJson() {
      return this.action ? prettyJson(this.action.payload) : '';
    },

    get hasOutcome() {
      return Boolean(this.action) && this.action.outcome !== null;
    },

    get outcomeJson() {
      return this.hasOutcome ? prettyJson(this.action.outcome) : '';
    },

    get approverNote() {
      return this.action && this.action.approver_note ? this.action.approver_note : '';
    },

    get rejectionNote() {
      return this.action && this.action.rejection_note ? this.action.rejection_note : '';
    },

    get hasApproverNote() {
      return this.approverNote !== '';
    },

    get hasRejectionNote() {
      return this.rejectionNote !== '';
    },

    /** Every audit timestamp the action has, with who did it. */
    get auditSteps() {
      if (!this.action) return [];
      const action = this.action;
      return AUDIT_STEPS.filter((step) => action[step.at]).map((step) => ({
        label: step.label,
        at: action[step.at],
        absolute: absoluteTime(action[step.at]),
        relative: relativeTime(action[step.at], this.$store.ui.now),
        actor: step.by ? (action[step.by] ? action[step.by].name : '—') : 'System (TTL passed)',
      }));
    },

    /** Several approvals needed, or some in: the Approvals section shows (as in the row, never on a dry run). */
    get showsApprovals() {
      return hasApprovalProgress(this.action) && this.action.mode !== 'dry_run';
    },

    get approvalProgress() {
      return this.action ? approvalProgress(this.action) : '';
    },

    /** The approvals so far, oldest first, ready to show. */
    get approvals() {
      const approvals = this.action && Array.isArray(this.action.approvals) ? this.action.approvals : [];
      return approvals.map((approval, index) => ({
        key: `${index}-${approval.at}`,
        name: approval.user ? approval.user.name : '—',
        at: approval.at,
        absolute: absoluteTime(approval.at),
        relative: relativeTime(approval.at, this.$store.ui.now),
        note: approval.note || '',
        hasNote: Boolean(approval.note),
      }));
    },

    get hasApprovals() {
      return this.approvals.length > 0;
    },

    /** "2 approvals from Operator, Approver or Admin; self-approval not allowed." (fixed at proposal) */
    get policyRule() {
      const policy = this.action && this.action.policy;
      if (!policy) return '';
      const required = approvalsRequired(this.action);
      const who = rolesPhrase(policy.approver_roles);
      const count = required === 1 ? '1 approval' : `${required} approvals`;
      const self = policy.allow_self_approval ? 'self-approval allowed' : 'self-approval not allowed';
      return who ? `${count} from ${who}; ${self}.` : `${count}; ${self}.`;
    },

    get hasPolicyRule() {
      return this.policyRule !== '';
    },

    get events() {
      return this.action && this.action.events ? this.action.events : [];
    },

    get hasEvents() {
      return this.events.length > 0;
    },

    eventTitle(event) {
      return eventLabel(event.type);
    },

    eventClass(event) {
      return `timeline-dot dot-${event.type}`;
    },

    eventActor(event) {
      if (!event.actor) return 'System';
      return event.actor.kind && event.actor.kind !== 'user' ? `${event.actor.name} (${event.actor.kind})` : event.actor.name;
    },

    eventAbsolute(event) {
      return absoluteTime(event.at);
    },

    eventRelative(event) {
      return relativeTime(event.at, this.$store.ui.now);
    },

    eventHasData(event) {
      return Boolean(event.data) && Object.keys(event.data).length > 0;
    },

    /** The data can outgrow its box (an approval lists every approver): scrollable, so focusable and named. */
    eventDataLabel(event) {
      return `Data of event ${event.seq}, ${eventLabel(event.type)}`;
    },

    eventData(event) {
      return prettyJson(event.data);
    },
  };
}
