// The workspace's members (GET /api/v1/members) and role changes (PATCH /api/v1/members/{id}).
// Who may change a role is the server's call: the page asks `session.can('manage_members')`
// to show the controls, and the API answers 403 / 409 `last_admin` where it must.

import { api } from '../lib/api.js';
import { describeError } from '../lib/messages.js';
import { describeMemberError } from '../lib/messages.js';

function memberUrl(id) {
  return `/api/v1/members/${encodeURIComponent(id)}`;
}

export function membersStore() {
  return {
    items: [],
    state: 'idle', // idle | loading | ready | failed
    problem: '',
    savingId: null,

    async load() {
      this.state = 'loading';
      this.problem = '';
      try {
        const page = await api.get('/api/v1/members');
        this.items = page.items;
        this.state = 'ready';
      } catch (error) {
        this.state = 'failed';
        this.problem = describeError(error);
      }
    },

    /** Put the server's latest version of a member in place. */
    replace(member) {
      const index = this.items.findIndex((item) => item.id === member.id);
      if (index >= 0) this.items.splice(index, 1, member);
    },

    /**
     * PATCH the role. Resolves with {ok: true, member} or {ok: false, message}; on a refusal
     * the list is reloaded, so that it shows what the server holds.
     */
    async changeRole(member, role) {
      this.savingId = member.id;
      try {
        const updated = await api.patch(memberUrl(member.id), { role });
        this.replace(updated);
        return { ok: true, member: updated };
      } catch (error) {
        const message = describeMemberError(error, member);
        if (error.code !== 'network') await this.load();
        return { ok: false, message };
      } finally {
        this.savingId = null;
      }
    },
  };
}
