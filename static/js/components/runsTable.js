// /runs: the runs the fleet's agents reported, latest first, with "Load more".

import { absoluteTime } from '../lib/format.js';
import { relativeTime } from '../lib/format.js';

export default function runsTable() {
  return {
    init() {
      this.$store.runs.loadList();
    },

    get items() {
      return this.$store.runs.items;
    },

    get isLoading() {
      return this.$store.runs.listState === 'loading';
    },

    get isEmpty() {
      return this.$store.runs.listState === 'ready' && this.items.length === 0;
    },

    get canLoadMore() {
      return Boolean(this.$store.runs.nextCursor);
    },

    get loadMoreLabel() {
      return this.$store.runs.loadingMore ? 'Loading…' : 'Load more';
    },

    loadMore() {
      this.$store.runs.loadMore();
    },

    runUrl(run) {
      return `/runs/${encodeURIComponent(run.id)}`;
    },

    title(run) {
      return run.title || run.id;
    },

    statusClass(run) {
      return `run-status run-status-${run.status}`;
    },

    relativeTime(iso) {
      return relativeTime(iso, this.$store.ui.now);
    },

    absoluteTime(iso) {
      return absoluteTime(iso);
    },
  };
}
