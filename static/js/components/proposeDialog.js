// The propose dialog for tier 1 and 2 items of the NodeActionMenu: a reason and a mode.
// Opened by `propose-open` {actionType, tier, targetRef, nodeId, nodeLabel, runId, runTitle}.
// Tier 3 items go through the ConfirmTypedDialog instead (nodeActionMenu.js).

import { dialogBehaviour } from '../lib/dialog.js';
import { MODE_LABELS } from '../lib/format.js';
import { nodeElement } from '../lib/graph.js';

export default function proposeDialog() {
  return {
    ...dialogBehaviour,
    open: false,
    subject: null,
    reason: '',
    mode: 'supervised',
    busy: false,
    error: '',
    opener: null,

    openFor(detail) {
      this.subject = detail;
      this.reason = '';
      this.mode = 'supervised';
      this.error = '';
      this.busy = false;
      this.opener = document.activeElement;
      this.open = true;
      this.$store.ui.dialogOpen = true;
    },

    get title() {
      return this.subject ? `Propose ${this.subject.actionType}` : 'Propose';
    },

    get subjectTier() {
      return this.subject ? `T${this.subject.tier}` : '';
    },

    get subjectTierClass() {
      return this.subject ? `tier tier-${this.subject.tier}` : 'tier';
    },

    get subjectType() {
      return this.subject ? this.subject.actionType : '';
    },

    get subjectTarget() {
      return this.subject ? this.subject.targetRef : '';
    },

    get subjectNode() {
      return this.subject ? `From node ${this.subject.nodeLabel} of ${this.subject.runTitle}` : '';
    },

    get modes() {
      return Object.keys(MODE_LABELS);
    },

    modeLabel(mode) {
      return MODE_LABELS[mode];
    },

    get reasonGiven() {
      return this.reason.trim() !== '';
    },

    get submitDisabled() {
      return this.busy || !this.reasonGiven;
    },

    get confirmLabel() {
      return this.busy ? 'Proposing…' : 'Propose';
    },

    async submit() {
      if (this.submitDisabled) return;
      const subject = this.subject;
      await this.settle(() =>
        this.$store.runs.propose({
          action_type: subject.actionType,
          target_ref: subject.targetRef,
          reason: this.reason.trim(),
          mode: this.mode,
        }),
      );
    },

    close() {
      const nodeId = this.subject ? this.subject.nodeId : null;
      this.closeAndRestoreFocus(() => nodeElement(nodeId));
    },
  };
}
