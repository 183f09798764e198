// What every dialog does the same way: its busy/error state around a request, Cancel,
// Escape, and giving focus back when it closes. Spread into a component's object.

import { restoreFocus } from './focus.js';

export const dialogBehaviour = {
  /** Await `request()` ({ok, keepOpen, message}); a fixable error keeps the dialog open. */
  async settle(request) {
    this.busy = true;
    this.error = '';
    let result;
    try {
      result = await request();
    } finally {
      this.busy = false;
    }
    if (result && !result.ok && result.keepOpen) {
      this.error = result.message;
      return;
    }
    this.close();
  },

  cancel() {
    if (!this.busy) this.close();
  },

  /** Escape closes the dialog wherever focus is (the trap may not hold it yet). */
  onEscape(event) {
    if (!this.open || event.defaultPrevented) return;
    event.preventDefault();
    this.cancel();
  },

  /** Close, then focus the element that opened the dialog, else `fallback()`. */
  closeAndRestoreFocus(fallback) {
    this.open = false;
    this.$store.ui.dialogOpen = false;
    const opener = this.opener;
    this.opener = null;
    this.$nextTick(() => restoreFocus(opener, fallback()));
  },
};
