// The KPI counts of the workspace (GET /api/v1/deployments/summary), in the browser's
// time zone so that "today" means the operator's today. The tab counts come from here too.

import { api } from '../lib/api.js';
import { browserTimeZone } from '../lib/format.js';

export function summaryStore() {
  return {
    data: null,
    timeZone: browserTimeZone(),
    failed: false,
    requestSeq: 0,

    async refresh() {
      const seq = ++this.requestSeq;
      try {
        const data = await api.get(`/api/v1/deployments/summary?tz=${encodeURIComponent(this.timeZone)}`);
        if (seq !== this.requestSeq) return; // a newer refresh already answered
        this.data = data;
        this.failed = false;
      } catch (error) {
        if (seq === this.requestSeq) this.failed = true;
        throw error;
      }
    },

    /** A top-level count (`proposed`, `pending_approval`, …), or null before the first answer. */
    count(key) {
      return this.data ? this.data[key] : null;
    },

    /** The number of rows with this status (`all` for every row), or null before the first answer. */
    statusCount(status) {
      return this.data ? this.data.by_status[status] : null;
    },
  };
}
