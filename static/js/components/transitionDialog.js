// The dialog for the everyday decisions: approve (tiers 1 and 2, optional note), reject
// (note) and mark executed (optional outcome, a JSON object checked here before sending).
// Opened by `transition-requested` {action, transition} from a row button.

import { rowOf } from '../lib/focus.js';
import { dialogBehaviour } from '../lib/dialog.js';

const COPY = {
  approve: {
    title: 'Approve action',
    noteLabel: 'Note for the audit trail (optional)',
    confirm: 'Approve',
    busy: 'Approving…',
  },
  reject: {
    title: 'Reject action',
    noteLabel: 'Why reject it? (recorded in the audit trail)',
    confirm: 'Reject',
    busy: 'Rejecting…',
  },
  'mark-executed': {
    title: 'Mark as executed',
    noteLabel: '',
    confirm: 'Mark executed',
    busy: 'Saving…',
  },
};

/** The outcome text as a value to send: undefined when blank, else a JSON object, else an Error. */
export function parseOutcome(text) {
  if (text.trim() === '') return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new Error(`Not valid JSON: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return new Error('The outcome must be a JSON object, like {"status": "succeeded"}.');
  }
  return value;
}

export default function transitionDialog() {
  return {
    ...dialogBehaviour,
    open: false,
    action: null,
    transition: 'approve',
    note: '',
    outcomeText: '',
    busy: false,
    error: '',
    opener: null,

    openFor({ action, transition }) {
      if (!COPY[transition]) return;
      this.action = action;
      this.transition = transition;
      this.note = '';
      this.outcomeText = '';
      this.error = '';
      this.busy = false;
      this.opener = document.activeElement;
      this.open = true;
      this.$store.ui.dialogOpen = true;
    },

    get copy() {
      return COPY[this.transition];
    },

    get title() {
      return this.copy.title;
    },

    get subjectType() {
      return this.action ? this.action.action_type : '';
    },

    get subjectTarget() {
      return this.action ? this.action.target_ref : '';
    },

    get subjectTier() {
      return this.action ? `T${this.action.tier}` : '';
    },

    get subjectTierClass() {
      return this.action ? `tier tier-${this.action.tier}` : 'tier';
    },

    get subjectReason() {
      return this.action ? this.action.reason : '';
    },

    get showsNote() {
      return this.transition !== 'mark-executed';
    },

    get showsOutcome() {
      return this.transition === 'mark-executed';
    },

    get noteLabel() {
      return this.copy.noteLabel;
    },

    get outcomeProblem() {
      const parsed = parseOutcome(this.outcomeText);
      return parsed instanceof Error ? parsed.message : '';
    },

    get outcomeInvalid() {
      return this.outcomeProblem === '' ? 'false' : 'true';
    },

    get submitDisabled() {
      return this.busy || (this.showsOutcome && this.outcomeProblem !== '');
    },

    get confirmLabel() {
      return this.busy ? this.copy.busy : this.copy.confirm;
    },

    get confirmClass() {
      return this.transition === 'reject' ? 'button button-danger' : 'button button-primary';
    },

    body() {
      if (this.showsOutcome) {
        const outcome = parseOutcome(this.outcomeText);
        return outcome === undefined ? {} : { outcome };
      }
      const note = this.note.trim();
      return note === '' ? {} : { note };
    },

    async submit() {
      if (this.submitDisabled) return;
      await this.settle(() => this.$store.queue.perform(this.action, this.transition, this.body()));
    },

    close() {
      const actionId = this.action ? this.action.id : null;
      this.closeAndRestoreFocus(() => rowOf(actionId));
    },
  };
}
