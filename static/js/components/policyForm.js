// The approval policy on /settings: one fieldset per tier (approvals required, which roles
// may approve, self-approval). Editable when the server grants `manage_policy`, else a
// read-only summary. The form keeps a draft; what is valid is the server's call (422 errors
// are shown next to their field), and a saved policy applies to new proposals only.

import { absoluteTime } from '../lib/format.js';
import { relativeTime } from '../lib/format.js';
import { rolesPhrase } from '../lib/format.js';
import { POLICY_TIERS } from '../stores/policy.js';

function draftFrom(document) {
  const draft = {};
  for (const tier of POLICY_TIERS) {
    const rule = (document && document.tiers && document.tiers[tier]) || {};
    draft[`tier${tier}`] = {
      approvals_required: rule.approvals_required,
      approver_roles: Array.isArray(rule.approver_roles) ? [...rule.approver_roles] : [],
      allow_self_approval: Boolean(rule.allow_self_approval),
    };
  }
  return draft;
}

function emptyDraft() {
  return draftFrom(null);
}

export default function policyForm() {
  return {
    draft: emptyDraft(),
    errors: {},
    formError: '',

    async init() {
      await this.$store.policy.load();
      this.reset();
    },

    reset() {
      this.draft = draftFrom(this.$store.policy.document);
      this.errors = {};
      this.formError = '';
    },

    get isLoading() {
      return this.$store.policy.state === 'loading';
    },

    get isReady() {
      return this.$store.policy.document !== null;
    },

    get hasFailed() {
      return this.$store.policy.state === 'failed';
    },

    get problem() {
      return this.$store.policy.problem;
    },

    retry() {
      this.init();
    },

    /** The server says whether this user may change the policy (`capabilities`). */
    get canEdit() {
      return this.isReady && this.$store.session.can('manage_policy');
    },

    get showsReadOnly() {
      return this.isReady && !this.$store.session.can('manage_policy');
    },

    get readOnlyNote() {
      return this.$store.session.isKnown ? 'Only an admin can change the policy.' : '';
    },

    get saving() {
      return this.$store.policy.saving;
    },

    get isDirty() {
      return JSON.stringify(this.draft) !== JSON.stringify(draftFrom(this.$store.policy.document));
    },

    get saveDisabled() {
      return this.saving;
    },

    get discardDisabled() {
      return this.saving || !this.isDirty;
    },

    get saveLabel() {
      return this.saving ? 'Saving…' : 'Save policy';
    },

    get updatedText() {
      const document = this.$store.policy.document;
      if (!document || !document.updated_at) return 'Never changed: these are the defaults.';
      const by = document.updated_by ? ` by ${document.updated_by.name}` : '';
      return `Last changed ${relativeTime(document.updated_at, this.$store.ui.now)}${by}.`;
    },

    get updatedAt() {
      const document = this.$store.policy.document;
      return document && document.updated_at ? document.updated_at : '';
    },

    get updatedAtTitle() {
      return this.updatedAt ? absoluteTime(this.updatedAt) : '';
    },

    // ---- the body sent: the draft as the API spells it (tiers keyed "1", "2", "3")

    tiersBody() {
      const tiers = {};
      for (const tier of POLICY_TIERS) {
        const rule = this.draft[`tier${tier}`];
        tiers[tier] = {
          approvals_required: rule.approvals_required,
          approver_roles: [...rule.approver_roles],
          allow_self_approval: rule.allow_self_approval,
        };
      }
      return tiers;
    },

    async save() {
      if (this.saving || !this.canEdit) return;
      this.errors = {};
      this.formError = '';
      const result = await this.$store.policy.save(this.tiersBody());
      const notices = this.$store.notices;
      if (result.ok) {
        this.reset();
        notices.dismissError();
        notices.say('Approval policy saved. New proposals follow it; pending ones keep the rule they were proposed under.');
        return;
      }
      this.errors = result.fields;
      this.formError = this.unplacedErrors ? `${result.message} ${this.unplacedErrors}` : result.message;
      this.$nextTick(() => this.focusFirstProblem());
    },

    discard() {
      if (!this.saving) this.reset();
    },

    focusFirstProblem() {
      const invalid = this.$root.querySelector('[aria-invalid="true"]');
      if (invalid) invalid.focus();
      else if (this.$refs.formError) this.$refs.formError.focus();
    },

    // ---- errors next to their field (keys as the server sends them: "tiers.2.approvals_required")

    fieldError(tier, field) {
      return this.errors[`tiers.${tier}.${field}`] || '';
    },

    fieldInvalid(tier, field) {
      return this.fieldError(tier, field) === '' ? 'false' : 'true';
    },

    hasFieldError(tier, field) {
      return this.fieldError(tier, field) !== '';
    },

    /** Errors about a whole tier ("tiers.2": missing, not an object). */
    tierError(tier) {
      return this.errors[`tiers.${tier}`] || '';
    },

    hasTierError(tier) {
      return this.tierError(tier) !== '';
    },

    /** Errors whose field has no place in the form, said in the form-level message. */
    get unplacedErrors() {
      const placed = new Set();
      for (const tier of POLICY_TIERS) {
        placed.add(`tiers.${tier}`);
        for (const field of ['approvals_required', 'approver_roles', 'allow_self_approval']) {
          placed.add(`tiers.${tier}.${field}`);
        }
      }
      return Object.entries(this.errors)
        .filter(([key]) => !placed.has(key))
        .map(([key, text]) => `${key}: ${text}`)
        .join(' ');
    },

    // ---- the read-only summary

    readApprovals(tier) {
      const rule = this.draftRule(tier);
      return rule.approvals_required === 1 ? '1 approval' : `${rule.approvals_required} approvals`;
    },

    readRoles(tier) {
      return rolesPhrase(this.draftRule(tier).approver_roles) || '—';
    },

    readSelfApproval(tier) {
      return this.draftRule(tier).allow_self_approval
        ? 'Allowed: a proposer may approve their own action'
        : 'Not allowed: someone other than the proposer (and their agent or owner) must approve';
    },

    draftRule(tier) {
      return this.draft[`tier${tier}`];
    },
  };
}
