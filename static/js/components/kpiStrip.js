// KPI strip: Proposed · Pending approval · Executed today · Rejected today, from the summary
// store (in the browser's time zone). Numbers refresh with the queue and after each decision.

import { absoluteTime } from '../lib/format.js';
import { describeError } from '../lib/messages.js';

const PLACEHOLDER = '–';

export default function kpiStrip() {
  return {
    init() {
      this.$store.summary.refresh().catch((error) => this.$store.notices.fail(describeError(error)));
    },

    value(key) {
      const count = this.$store.summary.count(key);
      return count === null ? PLACEHOLDER : String(count);
    },

    get isLoading() {
      return this.$store.summary.data === null;
    },

    get timeZone() {
      return this.$store.summary.timeZone;
    },

    get asOfTitle() {
      const data = this.$store.summary.data;
      return data ? `Counted at ${absoluteTime(data.as_of)}; “today” starts at midnight in ${data.tz}.` : '';
    },
  };
}
