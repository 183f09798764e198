// The actions queue: the rows of the selected tab, paging through `next_cursor`, in-place
// updates after a transition, and the transitions themselves (POST …/{id}/{transition}).
// What a row may do comes from the server (`allowed_transitions`); nothing here decides it.

import Alpine from '../../vendor/alpinejs-csp.esm.js';
import { api } from '../lib/api.js';
import { TRANSITION_DONE_LABELS } from '../lib/format.js';
import { approvalProgress } from '../lib/format.js';
import { relativeTime } from '../lib/format.js';
import { describeError } from '../lib/messages.js';
import { describeTransitionError } from '../lib/messages.js';

export const STATUSES = ['proposed', 'approved', 'executed', 'rejected', 'expired'];
export const PAGE_SIZE = 25;
export const REFRESH_INTERVAL_MS = 15_000;
const MAX_PAGE_SIZE = 200;

// Errors the operator can fix inside the open dialog (it stays open, the input is kept).
const FIXABLE_IN_DIALOG = new Set([
  'confirmation_mismatch',
  'operator_reason_required',
  'validation_error',
  'malformed_json',
  'rate_limited',
  'network',
]);
// Errors meaning the row changed under us (or our role did): show its current state.
// version_mismatch: decided on a stale view (If-Match); show the action as it is now, ask again.
const RELOAD_ROW = new Set(['expired', 'invalid_transition', 'already_approved', 'forbidden', 'version_mismatch']);

function actionUrl(id) {
  return `/api/v1/deployments/actions/${encodeURIComponent(id)}`;
}

function withoutEvents(action) {
  const { events, ...row } = action;
  return row;
}

/** What the status region says after a transition succeeded. */
function doneMessage(transition, updated) {
  const subject = `${updated.action_type} on ${updated.target_ref}`;
  // An approval before the N-th leaves the action proposed: say where the count is.
  if (transition === 'approve' && updated.status === 'proposed') {
    return `Approval recorded (${approvalProgress(updated)}): ${subject}.`;
  }
  return `${TRANSITION_DONE_LABELS[transition]}: ${subject}.`;
}

export function queueStore() {
  return {
    status: 'all',
    items: [],
    nextCursor: null,
    state: 'idle', // idle | loading | ready | failed
    loadingMore: false,
    refreshedAt: null,
    requestSeq: 0,

    listUrl(limit, cursor) {
      const params = new URLSearchParams({ limit: String(limit) });
      if (this.status !== 'all') params.set('status', this.status);
      if (cursor) params.set('cursor', cursor);
      return `/api/v1/deployments/actions?${params}`;
    },

    /** Switch to another tab and load its first page. */
    show(status) {
      this.status = STATUSES.includes(status) ? status : 'all';
      this.items = [];
      this.nextCursor = null;
      return this.load();
    },

    /** Load the first page; `quiet` refreshes what is shown (same number of rows) without a spinner. */
    async load({ quiet = false } = {}) {
      const seq = ++this.requestSeq;
      const limit = quiet ? Math.min(Math.max(this.items.length, PAGE_SIZE), MAX_PAGE_SIZE) : PAGE_SIZE;
      if (!quiet) this.state = 'loading';
      try {
        const page = await api.get(this.listUrl(limit));
        if (seq !== this.requestSeq) return; // the tab changed meanwhile
        this.items = page.items;
        this.nextCursor = page.next_cursor;
        this.state = 'ready';
        this.refreshedAt = Date.now();
        if (quiet) window.dispatchEvent(new CustomEvent('queue-refreshed'));
      } catch (error) {
        if (seq !== this.requestSeq) return;
        if (!quiet) this.state = 'failed';
        const notices = Alpine.store('notices');
        const message = describeError(error);
        // A background refresh that keeps failing the same way says so once.
        if (!quiet || notices.error !== message) notices.fail(message);
      }
    },

    async loadMore() {
      if (!this.nextCursor || this.loadingMore) return;
      const seq = ++this.requestSeq;
      this.loadingMore = true;
      try {
        const page = await api.get(this.listUrl(PAGE_SIZE, this.nextCursor));
        if (seq !== this.requestSeq) return;
        const known = new Set(this.items.map((item) => item.id));
        this.items = this.items.concat(page.items.filter((item) => !known.has(item.id)));
        this.nextCursor = page.next_cursor;
      } catch (error) {
        if (seq === this.requestSeq) Alpine.store('notices').fail(describeError(error));
      } finally {
        this.loadingMore = false;
      }
    },

    /** Background refresh (every 15 s): skipped while the stream is live, a dialog is open or a load runs. */
    refresh() {
      if (Alpine.store('live').isLive) return;
      if (Alpine.store('ui').dialogOpen || this.state === 'loading' || this.loadingMore) return;
      this.load({ quiet: true });
      Alpine.store('summary')
        .refresh()
        .catch(() => {});
    },

    /** "Updated 2 min ago · refreshes every 15 s": how fresh the rows are (paused under a dialog). */
    freshness(now) {
      const live = Alpine.store('live').state;
      if (live === 'live') return 'Live';
      if (live === 'reconnecting') return 'Reconnecting…';
      if (!this.refreshedAt) return '';
      const updated = relativeTime(new Date(this.refreshedAt).toISOString(), Math.max(now, this.refreshedAt));
      return `Updated ${updated} · refreshes every ${REFRESH_INTERVAL_MS / 1000} s`;
    },

    find(id) {
      return this.items.find((item) => item.id === id) || null;
    },

    /** Put the server's latest version of an action in place of its row. */
    replace(action) {
      const index = this.items.findIndex((item) => item.id === action.id);
      if (index >= 0) this.items.splice(index, 1, withoutEvents(action));
      window.dispatchEvent(new CustomEvent('action-updated', { detail: { id: action.id } }));
    },

    /**
     * An event from the stream, with its action as it is now: its row changes in place (the
     * drawer follows through `action-updated`); a new proposal that belongs on this tab goes on top.
     */
    applyLive(type, action) {
      if (this.state !== 'ready') return;
      if (this.find(action.id)) {
        this.replace(action);
      } else if (type === 'proposed' && (this.status === 'all' || this.status === action.status)) {
        this.items.unshift(withoutEvents(action));
      }
    },

    /** Fetch one action again (after someone else changed it) and update its row. */
    async reload(id) {
      try {
        this.replace(await api.get(actionUrl(id)));
      } catch (error) {
        Alpine.store('notices').fail(describeError(error));
      }
    },

    /**
     * POST a transition. Resolves with {ok: true, action} or, on error, {ok: false, message,
     * keepOpen}: keepOpen means the open dialog should stay and show `message`; otherwise the
     * message went to the page's error region and the row shows its current state.
     */
    async perform(action, transition, body) {
      const notices = Alpine.store('notices');
      try {
        // If-Match: decide on the version this page shows, or get 412 and see the current one.
        const headers = action.version ? { 'If-Match': `"${action.version}"` } : {};
        const updated = await api.post(`${actionUrl(action.id)}/${transition}`, body, { headers });
        this.replace(updated);
        notices.dismissError();
        notices.say(doneMessage(transition, updated));
        this.refreshSummary();
        return { ok: true, action: updated };
      } catch (error) {
        const message = describeTransitionError(error, transition);
        if (FIXABLE_IN_DIALOG.has(error.code)) return { ok: false, keepOpen: true, message };
        // Out of the dialog, the message must say which action it is about.
        notices.fail(`${action.action_type} on ${action.target_ref}: ${message}`);
        if (RELOAD_ROW.has(error.code)) {
          await this.reload(action.id);
          this.refreshSummary();
        }
        return { ok: false, keepOpen: false, message };
      }
    },

    refreshSummary() {
      Alpine.store('summary')
        .refresh()
        .catch((error) => Alpine.store('notices').fail(describeError(error)));
    },
  };
}
