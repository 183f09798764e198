// The page follows the event stream (live.md §6): GET /api/v1/events as Server-Sent Events, with
// the session cookie (EventSource sends it; a GET needs no CSRF header). Each event carries the
// action as it is now, so its row is replaced in place, and the tab counts and KPI strip are read
// again. EventSource reconnects by itself with Last-Event-ID, so nothing is missed across a
// reconnect. When the stream cannot be had (refused, or failing again and again) the queue's
// 15 s polling takes over, and the stream is tried again a little later.

import Alpine from '../../vendor/alpinejs-csp.esm.js';

const STREAM_URL = '/api/v1/events';
// Every `event:` type the audit log has (EventSource only calls listeners of named types).
const EVENT_TYPES = [
  'proposed',
  'approval_recorded',
  'approved',
  'rejected',
  'executed',
  'expired',
  'member_role_changed',
  'policy_changed',
  'api_key_created',
  'api_key_revoked',
  'webhook_created',
  'webhook_deleted',
];
const FAILURES_BEFORE_POLLING = 3;
const RETRY_STREAM_AFTER_MS = 30_000;
const SUMMARY_DEBOUNCE_MS = 150;

export function liveStore() {
  return {
    state: 'off', // off | connecting | live | reconnecting | polling
    source: null,
    failures: 0,
    summaryTimer: null,
    retryTimer: null,

    get isLive() {
      return this.state === 'live';
    },

    /** Open the stream (once per page). */
    start() {
      if (this.source || typeof window.EventSource !== 'function') {
        if (!this.source) this.state = 'polling';
        return;
      }
      this.state = this.state === 'off' ? 'connecting' : 'reconnecting';
      const source = new window.EventSource(STREAM_URL);
      this.source = source;
      source.onopen = () => {
        this.failures = 0;
        this.state = 'live';
      };
      source.onerror = () => this.onError(source);
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (message) => this.onEvent(message));
      }
    },

    onError(source) {
      if (source !== this.source) return;
      this.failures += 1;
      // CLOSED: the server refused the stream (401, 429…); EventSource will not retry by itself.
      if (source.readyState === window.EventSource.CLOSED || this.failures >= FAILURES_BEFORE_POLLING) {
        source.close();
        this.source = null;
        this.state = 'polling';
        Alpine.store('queue').refresh();
        window.clearTimeout(this.retryTimer);
        this.retryTimer = window.setTimeout(() => this.start(), RETRY_STREAM_AFTER_MS);
        return;
      }
      this.state = 'reconnecting';
    },

    onEvent(message) {
      let item;
      try {
        item = JSON.parse(message.data);
      } catch {
        return;
      }
      this.failures = 0;
      this.state = 'live';
      if (item.action) Alpine.store('queue').applyLive(item.type, item.action);
      this.refreshSummarySoon();
    },

    /** One summary read for a burst of events. */
    refreshSummarySoon() {
      window.clearTimeout(this.summaryTimer);
      this.summaryTimer = window.setTimeout(() => {
        Alpine.store('summary')
          .refresh()
          .catch(() => {});
      }, SUMMARY_DEBOUNCE_MS);
    },
  };
}
