// Runs (GET /api/v1/runs…): the list page's rows and paging, the run shown on /runs/{id}
// with the node selected in it, and proposing an action from one of its nodes. What the
// node menu offers comes from the server (`menu`); nothing here decides who may propose.

import Alpine from '../../vendor/alpinejs-csp.esm.js';
import { api } from '../lib/api.js';
import { describeError } from '../lib/messages.js';
import { describeProposalError } from '../lib/messages.js';

export const RUN_PAGE_SIZE = 25;

// Errors the proposer can fix inside the open dialog (it stays open, the input is kept).
const FIXABLE_IN_DIALOG = new Set(['validation_error', 'malformed_json', 'rate_limited', 'network']);

function runUrl(id) {
  return `/api/v1/runs/${encodeURIComponent(id)}`;
}

export function runsStore() {
  return {
    items: [],
    nextCursor: null,
    listState: 'idle', // idle | loading | ready | failed
    loadingMore: false,

    run: null,
    runState: 'idle', // idle | loading | ready | failed | missing
    selectedNodeId: null,

    async loadList() {
      this.listState = 'loading';
      try {
        const page = await api.get(`/api/v1/runs?limit=${RUN_PAGE_SIZE}`);
        this.items = page.items;
        this.nextCursor = page.next_cursor;
        this.listState = 'ready';
      } catch (error) {
        this.listState = 'failed';
        Alpine.store('notices').fail(describeError(error));
      }
    },

    async loadMore() {
      if (!this.nextCursor || this.loadingMore) return;
      this.loadingMore = true;
      try {
        const cursor = encodeURIComponent(this.nextCursor);
        const page = await api.get(`/api/v1/runs?limit=${RUN_PAGE_SIZE}&cursor=${cursor}`);
        const known = new Set(this.items.map((item) => item.id));
        this.items = this.items.concat(page.items.filter((item) => !known.has(item.id)));
        this.nextCursor = page.next_cursor;
      } catch (error) {
        Alpine.store('notices').fail(describeError(error));
      } finally {
        this.loadingMore = false;
      }
    },

    /** Load the run with its graph; resolves with it (null when it failed). */
    async loadRun(id) {
      this.runState = 'loading';
      try {
        this.run = await api.get(runUrl(id));
        this.runState = 'ready';
        return this.run;
      } catch (error) {
        this.runState = error.status === 404 ? 'missing' : 'failed';
        Alpine.store('notices').fail(describeError(error));
        return null;
      }
    },

    /** Fetch the run again for its actions and status; the graph drawn stays as it is. */
    async refreshRun() {
      if (!this.run) return;
      try {
        const fresh = await api.get(runUrl(this.run.id));
        this.run = { ...this.run, status: fresh.status, actions: fresh.actions, menu: fresh.menu };
      } catch (error) {
        Alpine.store('notices').fail(describeError(error));
      }
    },

    node(id) {
      if (!this.run || id === null) return null;
      return this.run.nodes.find((node) => node.id === id) || null;
    },

    get selectedNode() {
      return this.node(this.selectedNodeId);
    },

    get hasMenu() {
      return Boolean(this.run) && this.run.menu.length > 0;
    },

    /** The menu's items for one node: each with the target_ref the server's `target` names. */
    menuFor(node) {
      if (!this.run || !node) return [];
      return this.run.menu.map((item) => ({
        actionType: item.action_type,
        tier: item.tier,
        targetRef: item.target === 'node' && node.ref ? node.ref : this.run.id,
        confirmationText: item.confirmation_text,
      }));
    },

    /**
     * POST a proposal. Resolves with {ok: true, action} or {ok: false, keepOpen, message}, like
     * the queue's transitions: keepOpen means the dialog stays open and shows `message`.
     */
    async propose(body) {
      const notices = Alpine.store('notices');
      try {
        const action = await api.post('/api/v1/deployments/actions', body);
        notices.dismissError();
        notices.say(`Proposed ${action.action_type} on ${action.target_ref}: it is in the queue, ${action.status}.`);
        await this.refreshRun();
        return { ok: true, action };
      } catch (error) {
        const message = describeProposalError(error);
        if (FIXABLE_IN_DIALOG.has(error.code)) return { ok: false, keepOpen: true, message };
        notices.fail(`${body.action_type} on ${body.target_ref}: ${message}`);
        return { ok: false, keepOpen: false, message };
      }
    },
  };
}
