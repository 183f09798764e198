// The NodeActionMenu (the ARIA menu pattern): opened at a node by `node-menu-open` {nodeId,
// x, y}; its items are those the server put in the run's `menu` (a viewer gets none, so no
// menu). Arrow keys, Home and End move, Enter or Space chooses, Escape and Tab close, and
// focus goes back to the node. A tier 3 item opens the one ConfirmTypedDialog (the queue's)
// in its "propose" use; tier 1 and 2 open the propose dialog.

import { modeLabel } from '../lib/format.js';
import { nodeElement } from '../lib/graph.js';
import { nodeLabel } from '../lib/graph.js';

const ACTION_LABELS = {
  tag_trace: 'Tag trace',
  create_incident: 'Create incident',
  alert: 'Alert on-call',
  kill_run: 'Kill run',
};

export default function nodeActionMenu() {
  return {
    open: false,
    nodeId: null,
    items: [],
    active: 0,

    show({ nodeId, x, y }) {
      const node = this.$store.runs.node(nodeId);
      this.items = this.$store.runs.menuFor(node);
      if (this.items.length === 0) return;
      this.nodeId = nodeId;
      this.active = 0;
      this.open = true;
      const menu = this.$refs.menu;
      // Set through the CSSOM (allowed by the CSP, unlike a style attribute), kept on screen.
      menu.style.left = `${Math.max(8, Math.min(x, window.innerWidth - 300))}px`;
      menu.style.top = `${Math.max(8, Math.min(y, window.innerHeight - 220))}px`;
      this.$nextTick(() => this.focusItem(0));
    },

    get node() {
      return this.$store.runs.node(this.nodeId);
    },

    get menuLabel() {
      return this.node ? `Actions on ${nodeLabel(this.node)}` : 'Actions';
    },

    itemLabel(item) {
      return ACTION_LABELS[item.actionType] || item.actionType;
    },

    itemTier(item) {
      return `T${item.tier}`;
    },

    itemTierClass(item) {
      return `tier tier-${item.tier}`;
    },

    /** Read after the label, for the eye's "T1" badge: ", tier 1, on". */
    itemTierPhrase(item) {
      return `, tier ${item.tier}, on `;
    },

    itemButtons() {
      return Array.from(this.$refs.menu.querySelectorAll('[role="menuitem"]'));
    },

    focusItem(index) {
      const buttons = this.itemButtons();
      if (buttons.length === 0) return;
      this.active = (index + buttons.length) % buttons.length;
      buttons[this.active].focus();
    },

    /** Close; `giveFocusBack` returns focus to the node the menu was opened on. */
    close(giveFocusBack = true) {
      if (!this.open) return;
      this.open = false;
      if (giveFocusBack) {
        const node = nodeElement(this.nodeId);
        if (node) node.focus();
      }
    },

    onKeydown(event) {
      const keys = {
        ArrowDown: () => this.focusItem(this.active + 1),
        ArrowUp: () => this.focusItem(this.active - 1),
        Home: () => this.focusItem(0),
        End: () => this.focusItem(this.items.length - 1),
        Escape: () => this.close(),
      };
      if (event.key === 'Tab') {
        event.preventDefault();
        this.close();
        return;
      }
      if (keys[event.key]) {
        event.preventDefault();
        event.stopPropagation();
        keys[event.key]();
      }
    },

    onOutside() {
      this.close(false);
    },

    choose(item) {
      const node = this.node;
      const run = this.$store.runs.run;
      this.close(); // focus is on the node again: the dialog gives it back there when it closes
      const detail = {
        actionType: item.actionType,
        tier: item.tier,
        targetRef: item.targetRef,
        nodeId: node.id,
        nodeLabel: nodeLabel(node),
        runId: run.id,
        runTitle: run.title || run.id,
      };
      if (item.confirmationText) this.proposeTyped(detail, item.confirmationText);
      else this.$dispatch('propose-open', detail);
    },

    /** Tier 3: the queue's ConfirmTypedDialog, with the words and the request of a proposal. */
    proposeTyped(detail, confirmationText) {
      this.$dispatch('confirm-typed-open', {
        title: `Propose tier ${detail.tier}: ${detail.actionType}`,
        description:
          'Tier 3 changes act on a live fleet. The proposal goes to the queue, where someone else must approve it. Check the target, then type its first characters to confirm.',
        facts: [
          { label: 'Target', value: detail.targetRef, mono: true },
          { label: 'Run', value: detail.runTitle },
          { label: 'From node', value: detail.nodeLabel },
          { label: 'Mode', value: modeLabel('supervised') },
        ],
        text: confirmationText,
        reasonRequired: true,
        reasonLabel: 'Reason (recorded with the proposal)',
        confirmLabel: `Propose ${detail.actionType}`,
        busyLabel: 'Proposing…',
        onConfirm: ({ reason }) =>
          this.$store.runs.propose({
            action_type: detail.actionType,
            target_ref: detail.targetRef,
            reason,
            mode: 'supervised',
          }),
        fallbackFocus: () => nodeElement(detail.nodeId),
      });
    },
  };
}
