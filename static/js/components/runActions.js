// The run's actions beside the graph: those whose target is the run or one of its node refs
// (the server's `actions`), each linking to its drawer on /deployments.

import { relativeTime } from '../lib/format.js';
import { absoluteTime } from '../lib/format.js';
import { statusLabel } from '../lib/format.js';

export default function runActions() {
  return {
    get actions() {
      const run = this.$store.runs.run;
      return run ? run.actions : [];
    },

    get isEmpty() {
      return this.$store.runs.run !== null && this.actions.length === 0;
    },

    drawerUrl(action) {
      return `/deployments#action=${encodeURIComponent(action.id)}`;
    },

    linkLabel(action) {
      return `${action.action_type} on ${action.target_ref}, ${statusLabel(action.status)}: open in the queue`;
    },

    tierLabel(action) {
      return `T${action.tier}`;
    },

    tierClass(action) {
      return `tier tier-${action.tier}`;
    },

    statusLabel(action) {
      return statusLabel(action.status);
    },

    statusClass(action) {
      return `pill pill-${action.status}`;
    },

    relativeTime(iso) {
      return relativeTime(iso, this.$store.ui.now);
    },

    absoluteTime(iso) {
      return absoluteTime(iso);
    },
  };
}
