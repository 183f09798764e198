// The top bar: who is signed in, in which workspace, and signing out. The session itself
// lives in the `session` store, which the settings page reads for the capabilities.

import { LOGIN_PATH } from '../lib/api.js';
import { api } from '../lib/api.js';
import { roleLabel } from '../lib/format.js';
import { describeError } from '../lib/messages.js';

export default function sessionBar() {
  return {
    signingOut: false,

    async init() {
      try {
        await this.$store.session.load();
      } catch (error) {
        this.$store.notices.fail(describeError(error));
      }
    },

    get isKnown() {
      return this.$store.session.isKnown;
    },

    get userName() {
      return this.isKnown ? this.$store.session.user.name : '';
    },

    get userEmail() {
      return this.isKnown ? this.$store.session.user.email : '';
    },

    get userRole() {
      return this.isKnown ? roleLabel(this.$store.session.user.role) : '';
    },

    get hasRole() {
      return this.userRole !== '';
    },

    get workspaceName() {
      return this.$store.session.workspace ? this.$store.session.workspace.name : '';
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
