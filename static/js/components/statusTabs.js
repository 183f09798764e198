// Status tabs (ARIA tabs with automatic activation): All · Proposed · … · Expired, each
// with its count from the summary. The selected tab lives in the URL (?status=approved),
// so a reload or a shared link shows the same tab; Back/Forward move between tabs.

import { STATUSES } from '../stores/queue.js';

const TAB_ORDER = ['all', ...STATUSES];

function statusFromUrl() {
  const status = new URLSearchParams(window.location.search).get('status');
  return TAB_ORDER.includes(status) ? status : 'all';
}

export default function statusTabs() {
  return {
    init() {
      this.$store.queue.show(statusFromUrl());
      window.addEventListener('popstate', () => {
        const status = statusFromUrl();
        if (status !== this.$store.queue.status) this.$store.queue.show(status);
      });
    },

    isSelected(status) {
      return this.$store.queue.status === status;
    },

    ariaSelected(status) {
      return this.isSelected(status) ? 'true' : 'false';
    },

    tabIndex(status) {
      return this.isSelected(status) ? '0' : '-1';
    },

    count(status) {
      const count = this.$store.summary.statusCount(status);
      return count === null ? '' : String(count);
    },

    select(status) {
      if (this.isSelected(status)) return;
      const url = new URL(window.location.href);
      if (status === 'all') url.searchParams.delete('status');
      else url.searchParams.set('status', status);
      window.history.pushState({ status }, '', url);
      this.$store.queue.show(status);
    },

    /** Left/Right move to the previous/next tab (wrapping), Home/End to the first/last. */
    onKeydown(event) {
      const current = TAB_ORDER.indexOf(this.$store.queue.status);
      const last = TAB_ORDER.length - 1;
      const targets = {
        ArrowLeft: current === 0 ? last : current - 1,
        ArrowRight: current === last ? 0 : current + 1,
        Home: 0,
        End: last,
      };
      if (!(event.key in targets)) return;
      event.preventDefault();
      const status = TAB_ORDER[targets[event.key]];
      this.select(status);
      const tab = this.$root.querySelector(`[role="tab"][data-status="${status}"]`);
      if (tab) tab.focus();
    },
  };
}
