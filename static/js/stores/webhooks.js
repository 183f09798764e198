// The workspace's webhooks (webhooks.md §5): the list with each one's latest deliveries, and
// create, ping, enable and delete. Admins only: the page asks `session.can('manage_webhooks')`.
// A created webhook's secret is kept here until the admin dismisses it, and never fetched again.

import { api } from '../lib/api.js';
import { describeError } from '../lib/messages.js';

const BASE = '/api/v1/webhooks';
const LATEST = 5;
const REFRESH_MS = 1000;
const REFRESH_TRIES = 30;

function webhookUrl(id, tail = '') {
  return `${BASE}/${encodeURIComponent(id)}${tail}`;
}

export function webhooksStore() {
  return {
    items: [],
    deliveries: {}, // webhook id → its latest deliveries, newest first
    state: 'idle', // idle | loading | ready | failed
    problem: '',
    busyId: null,
    created: null, // {id, url, secret} of the webhook just created, until dismissed
    refreshTimer: null,
    refreshesLeft: 0,

    async load() {
      this.state = 'loading';
      this.problem = '';
      try {
        const page = await api.get(BASE);
        this.items = page.items;
        await Promise.all(this.items.map((webhook) => this.loadDeliveries(webhook.id)));
        this.state = 'ready';
      } catch (error) {
        this.state = 'failed';
        this.problem = describeError(error);
      }
    },

    async loadDeliveries(id) {
      const page = await api.get(webhookUrl(id, `/deliveries?limit=${LATEST}`));
      this.deliveries = { ...this.deliveries, [id]: page.items };
    },

    latest(id) {
      return this.deliveries[id] || [];
    },

    get anyPending() {
      return Object.values(this.deliveries).some((items) => items.some((item) => item.state === 'pending'));
    },

    /** Read the deliveries again every second while one is pending (the worker sends them). */
    followPending() {
      this.refreshesLeft = REFRESH_TRIES;
      if (this.refreshTimer !== null) return;
      const step = async () => {
        this.refreshesLeft -= 1;
        try {
          await Promise.all(this.items.map((webhook) => this.loadDeliveries(webhook.id)));
        } catch {
          // The next step tries again.
        }
        if (this.anyPending && this.refreshesLeft > 0) {
          this.refreshTimer = window.setTimeout(step, REFRESH_MS);
        } else {
          this.refreshTimer = null;
        }
      };
      this.refreshTimer = window.setTimeout(step, REFRESH_MS);
    },

    replace(webhook) {
      const index = this.items.findIndex((item) => item.id === webhook.id);
      if (index >= 0) this.items.splice(index, 1, webhook);
    },

    /** Resolves with {ok: true, webhook} (its secret kept in `created`) or {ok: false, error}. */
    async create(fields) {
      try {
        const answer = await api.post(BASE, fields);
        const { secret, ...webhook } = answer;
        this.items.push(webhook);
        this.deliveries = { ...this.deliveries, [webhook.id]: [] };
        this.created = { id: webhook.id, url: webhook.url, secret };
        return { ok: true, webhook };
      } catch (error) {
        return { ok: false, error };
      }
    },

    dismissSecret() {
      this.created = null;
    },

    async act(webhook, work) {
      this.busyId = webhook.id;
      try {
        return { ok: true, value: await work() };
      } catch (error) {
        if (error.code === 'not_found') await this.load();
        return { ok: false, error };
      } finally {
        this.busyId = null;
      }
    },

    async ping(webhook) {
      const result = await this.act(webhook, () => api.post(webhookUrl(webhook.id, '/ping')));
      if (result.ok) {
        await this.loadDeliveries(webhook.id).catch(() => {});
        this.followPending();
      }
      return result;
    },

    async enable(webhook) {
      const result = await this.act(webhook, () => api.post(webhookUrl(webhook.id, '/enable')));
      if (result.ok) this.replace(result.value);
      return result;
    },

    async remove(webhook) {
      const result = await this.act(webhook, () => api.delete(webhookUrl(webhook.id)));
      if (result.ok) {
        this.items = this.items.filter((item) => item.id !== webhook.id);
        if (this.created && this.created.id === webhook.id) this.created = null;
      }
      return result;
    },
  };
}
