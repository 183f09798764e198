// The workspace's approval policy (GET/PUT /api/v1/policy): per tier, how many approvals,
// from which roles, and whether a proposer may approve their own action. The rules of a
// valid policy are the server's: a 422 comes back as messages keyed by dotted field name.

import { api } from '../lib/api.js';
import { describeError } from '../lib/messages.js';
import { describePolicyError } from '../lib/messages.js';
import { fieldErrors } from '../lib/messages.js';

export const POLICY_TIERS = ['1', '2', '3'];

export function policyStore() {
  return {
    document: null,
    state: 'idle', // idle | loading | ready | failed
    problem: '',
    saving: false,

    async load() {
      this.state = 'loading';
      this.problem = '';
      try {
        this.document = await api.get('/api/v1/policy');
        this.state = 'ready';
      } catch (error) {
        this.state = 'failed';
        this.problem = describeError(error);
      }
    },

    /**
     * PUT the whole document. Resolves with {ok: true, document} or {ok: false, message,
     * fields}: `fields` maps "tiers.3.allow_self_approval" to a sentence (422 only).
     */
    async save(tiers) {
      this.saving = true;
      try {
        this.document = await api.put('/api/v1/policy', { tiers });
        return { ok: true, document: this.document };
      } catch (error) {
        const fields = error.code === 'validation_error' ? fieldErrors(error.details) : {};
        return { ok: false, message: describePolicyError(error), fields };
      } finally {
        this.saving = false;
      }
    },
  };
}
