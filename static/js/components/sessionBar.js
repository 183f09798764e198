// The top bar: who is signed in, in which workspace, and signing out.

import { LOGIN_PATH } from '../lib/api.js';
import { api } from '../lib/api.js';
import { describeError } from '../lib/messages.js';

export default function sessionBar() {
  return {
    user: null,
    workspace: null,
    signingOut: false,

    async init() {
      try {
        const me = await api.get('/api/v1/auth/me');
        this.user = me.user;
        this.workspace = me.workspace;
      } catch (error) {
        this.$store.notices.fail(describeError(error));
      }
    },

    get isKnown() {
      return this.user !== null;
    },

    get userName() {
      return this.user ? this.user.name : '';
    },

    get userEmail() {
      return this.user ? this.user.email : '';
    },

    get workspaceName() {
      return this.workspace ? this.workspace.name : '';
    },

    async signOut() {
      this.signingOut = true;
      try {
        await api.post('/api/v1/auth/logout');
      } catch (error) {
        // Signed out already (401 has redirected) or the server is away: leave anyway.
        if (error.code !== 'unauthorized') this.$store.notices.fail(describeError(error));
      }
      window.location.assign(LOGIN_PATH);
    },
  };
}
