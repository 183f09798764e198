// The details panel of the node selected in the graph (click or Enter on a node), with a
// button that opens the NodeActionMenu for it when the caller has one.

import { absoluteTime } from '../lib/format.js';
import { prettyJson } from '../lib/format.js';
import { KIND_ICONS } from '../lib/graph.js';
import { STATUS_ICONS } from '../lib/graph.js';
import { nodeElement } from '../lib/graph.js';
import { nodeLabel } from '../lib/graph.js';

export default function nodeDetails() {
  return {
    get node() {
      return this.$store.runs.selectedNode;
    },

    get hasNode() {
      return this.node !== null;
    },

    get title() {
      return this.node ? nodeLabel(this.node) : '';
    },

    get nodeId() {
      return this.node ? this.node.id : '';
    },

    get kind() {
      return this.node ? `${KIND_ICONS[this.node.kind] || ''} ${this.node.kind}` : '';
    },

    get status() {
      return this.node ? `${STATUS_ICONS[this.node.status] || ''} ${this.node.status}` : '';
    },

    get statusClass() {
      return this.node ? `node-pill node-pill-${this.node.status}` : 'node-pill';
    },

    get startedAt() {
      return this.node && this.node.started_at ? absoluteTime(this.node.started_at) : '—';
    },

    get endedAt() {
      return this.node && this.node.ended_at ? absoluteTime(this.node.ended_at) : '—';
    },

    get ref() {
      return this.node && this.node.ref ? this.node.ref : '—';
    },

    get hasAttrs() {
      return Boolean(this.node) && Object.keys(this.node.attrs).length > 0;
    },

    get attrsJson() {
      return this.node ? prettyJson(this.node.attrs) : '';
    },

    get hasMenu() {
      return this.$store.runs.hasMenu;
    },

    openMenu(event) {
      const place = event.currentTarget.getBoundingClientRect();
      const node = nodeElement(this.node.id);
      if (node) node.focus();
      this.$dispatch('node-menu-open', { nodeId: this.node.id, x: place.left, y: place.bottom + 4 });
    },
  };
}
