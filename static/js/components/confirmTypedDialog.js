// ConfirmTypedDialog: the one reusable dialog for a dangerous confirmation. Its confirm
// button stays disabled until `text` is typed exactly (same case) and, when required, a
// non-blank reason is given. It does no work itself: it hands {typed, reason} to the
// caller's `onConfirm` and shows what comes back. The server checks everything again.
//
// Open it from anywhere with $dispatch('confirm-typed-open', {
//   title,                  heading of the dialog
//   description,            optional sentence under the heading
//   facts,                  optional [{label, value, mono}] shown as a definition list
//   text,                   what the operator must type, exactly
//   reasonRequired,         whether the reason field must be filled in
//   reasonLabel,            label of the reason field
//   confirmLabel,           label of the confirm button (busyLabel while working)
//   onConfirm,              ({typed, reason}) => Promise<{ok, keepOpen, message}>
//   fallbackFocus,          optional () => element to focus on close if the opener is gone
// })

import { dialogBehaviour } from '../lib/dialog.js';

const DEFAULTS = {
  title: 'Confirm',
  description: '',
  facts: [],
  text: '',
  reasonRequired: true,
  reasonLabel: 'Reason',
  confirmLabel: 'Confirm',
  busyLabel: 'Working…',
  onConfirm: async () => ({ ok: true }),
  fallbackFocus: () => null,
};

export default function confirmTypedDialog() {
  return {
    ...dialogBehaviour,
    open: false,
    options: { ...DEFAULTS },
    typed: '',
    reason: '',
    busy: false,
    error: '',
    opener: null,

    openWith(detail) {
      this.options = { ...DEFAULTS, ...detail };
      this.typed = '';
      this.reason = '';
      this.error = '';
      this.busy = false;
      this.opener = document.activeElement;
      this.open = true;
      this.$store.ui.dialogOpen = true;
    },

    get title() {
      return this.options.title;
    },

    get description() {
      return this.options.description;
    },

    get hasDescription() {
      return this.options.description !== '';
    },

    get facts() {
      return this.options.facts;
    },

    get expectedText() {
      return this.options.text;
    },

    get reasonLabel() {
      return this.options.reasonRequired ? this.options.reasonLabel : `${this.options.reasonLabel} (optional)`;
    },

    get reasonRequired() {
      return this.options.reasonRequired;
    },

    get typedMatches() {
      return this.expectedText !== '' && this.typed === this.expectedText;
    },

    get reasonGiven() {
      return this.reason.trim() !== '';
    },

    get canConfirm() {
      return !this.busy && this.typedMatches && (this.reasonGiven || !this.options.reasonRequired);
    },

    get confirmDisabled() {
      return !this.canConfirm;
    },

    get confirmLabel() {
      return this.busy ? this.options.busyLabel : this.options.confirmLabel;
    },

    get typedHint() {
      if (this.typed === '') return 'Case-sensitive.';
      if (this.typedMatches) return 'Matches.';
      return 'Does not match yet. Case-sensitive.';
    },

    get typedHintClass() {
      return this.typedMatches ? 'field-hint is-ok' : 'field-hint';
    },

    get typedInvalid() {
      return this.typed !== '' && !this.typedMatches ? 'true' : 'false';
    },

    factClass(fact) {
      return fact.mono ? 'mono' : '';
    },

    async confirm() {
      if (!this.canConfirm) return;
      await this.settle(() => this.options.onConfirm({ typed: this.typed, reason: this.reason.trim() }));
    },

    close() {
      this.closeAndRestoreFocus(this.options.fallbackFocus);
    },
  };
}
