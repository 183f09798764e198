// Who is signed in (GET /api/v1/auth/me): the user, the workspace and what the server
// says this user may do (`capabilities`). The page shows edit controls from these
// strings only; the API checks every request again.

import { api } from '../lib/api.js';

export function sessionStore() {
  return {
    user: null,
    workspace: null,
    capabilities: [],
    requestSeq: 0,

    /** Load (or reload, after a role change) the session; rejects with the ApiError. */
    async load() {
      const seq = ++this.requestSeq;
      const me = await api.get('/api/v1/auth/me');
      if (seq !== this.requestSeq) return;
      this.user = me.user;
      this.workspace = me.workspace;
      this.capabilities = Array.isArray(me.capabilities) ? me.capabilities : [];
    },

    get isKnown() {
      return this.user !== null;
    },

    /** Whether the server granted `capability` (`manage_members`, `manage_policy`, …). */
    can(capability) {
      return this.capabilities.includes(capability);
    },
  };
}
