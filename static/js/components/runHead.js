// The heading of /runs/{id}: the run's title, id, agent, status and start.

import { absoluteTime } from '../lib/format.js';

export default function runHead() {
  return {
    get run() {
      return this.$store.runs.run;
    },

    get hasRun() {
      return this.run !== null;
    },

    get title() {
      return this.run ? this.run.title || this.run.id : 'Run';
    },

    get runId() {
      return this.run ? this.run.id : '';
    },

    get agent() {
      return this.run ? this.run.agent : '';
    },

    get status() {
      return this.run ? this.run.status : '';
    },

    get statusClass() {
      return this.run ? `run-status run-status-${this.run.status}` : 'run-status';
    },

    get startedIso() {
      return this.run ? this.run.started_at : '';
    },

    get startedAt() {
      return this.run ? absoluteTime(this.run.started_at) : '';
    },
  };
}
