// Webhooks on /settings (webhooks.md §5): each webhook with its latest deliveries; a form to
// create one, after which its secret is shown once with a copy button; Ping, Enable (when
// disabled) and Delete (asked twice) on each. Only for those the server grants `manage_webhooks`.

import { absoluteTime } from '../lib/format.js';
import { describeError } from '../lib/messages.js';
import { fieldErrors } from '../lib/messages.js';

const STATE_LABELS = { pending: 'Pending', delivered: 'Delivered', failed: 'Failed' };
// The status pills' colours: pending as a proposal, delivered as executed, failed as rejected.
const STATE_PILLS = { pending: 'pill pill-proposed', delivered: 'pill pill-executed', failed: 'pill pill-rejected' };

export default function webhooksPanel() {
  return {
    url: '',
    description: '',
    format: 'standard',
    saving: false,
    formProblem: '',
    urlProblem: '',
    copied: false,
    confirmingDeleteId: null,

    init() {
      if (this.canManage) this.$store.webhooks.load();
      this.$watch('$store.session.capabilities', () => {
        if (this.canManage && this.$store.webhooks.state === 'idle') this.$store.webhooks.load();
      });
    },

    get canManage() {
      return this.$store.session.can('manage_webhooks');
    },

    get cannotManage() {
      return this.$store.session.isKnown && !this.canManage;
    },

    get items() {
      return this.$store.webhooks.items;
    },

    get isLoading() {
      return this.$store.webhooks.state === 'loading' && this.items.length === 0;
    },

    get hasFailed() {
      return this.$store.webhooks.state === 'failed';
    },

    get problem() {
      return this.$store.webhooks.problem;
    },

    get isEmpty() {
      return this.$store.webhooks.state === 'ready' && this.items.length === 0;
    },

    get hasSecret() {
      return this.$store.webhooks.created !== null;
    },

    get secret() {
      const created = this.$store.webhooks.created;
      return created ? created.secret : '';
    },

    get secretFor() {
      const created = this.$store.webhooks.created;
      return created ? created.url : '';
    },

    get copyLabel() {
      return this.copied ? 'Copied' : 'Copy secret';
    },

    get createDisabled() {
      return this.saving || this.url.trim() === '';
    },

    get createLabel() {
      return this.saving ? 'Creating…' : 'Create webhook';
    },

    get hasUrlProblem() {
      return this.urlProblem !== '';
    },

    get hasFormProblem() {
      return this.formProblem !== '';
    },

    retry() {
      this.$store.webhooks.load();
    },

    async create() {
      if (this.createDisabled) return;
      this.saving = true;
      this.formProblem = '';
      this.urlProblem = '';
      const fields = { url: this.url.trim(), format: this.format };
      if (this.description.trim() !== '') fields.description = this.description.trim();
      const result = await this.$store.webhooks.create(fields);
      this.saving = false;
      if (result.ok) {
        this.url = '';
        this.description = '';
        this.copied = false;
        this.$store.notices.say(`Webhook created for ${result.webhook.url}. Copy its secret now: it is shown once.`);
        this.$nextTick(() => {
          const panel = this.$refs.secretPanel;
          if (panel) panel.focus();
        });
        return;
      }
      const problems = fieldErrors(result.error.details);
      if (result.error.code === 'validation_error' && problems.url) this.urlProblem = problems.url;
      this.formProblem = result.error.code === 'validation_error' ? 'The webhook was not created.' : describeError(result.error);
    },

    async copySecret() {
      const secret = this.secret;
      try {
        await navigator.clipboard.writeText(secret);
        this.copied = true;
      } catch {
        // No clipboard (an insecure origin): select the text so that the admin can copy it.
        const field = this.$refs.secretField;
        if (field) field.select();
      }
    },

    dismissSecret() {
      this.$store.webhooks.dismissSecret();
      this.copied = false;
    },

    latest(webhook) {
      return this.$store.webhooks.latest(webhook.id);
    },

    hasDeliveries(webhook) {
      return this.latest(webhook).length > 0;
    },

    hasNoDeliveries(webhook) {
      return !this.hasDeliveries(webhook);
    },

    isDisabled(webhook) {
      return webhook.disabled_at !== null;
    },

    statusText(webhook) {
      return this.isDisabled(webhook) ? `Disabled: ${webhook.disabled_reason || 'no reason given'}` : 'Enabled';
    },

    statusClass(webhook) {
      return this.isDisabled(webhook) ? STATE_PILLS.failed : STATE_PILLS.delivered;
    },

    describe(webhook) {
      return webhook.description || '';
    },

    formatLabel(webhook) {
      return webhook.format === 'slack' ? 'Slack' : 'Standard Webhooks';
    },

    eventsLabel(webhook) {
      return `${webhook.event_types.length} event types`;
    },

    isBusy(webhook) {
      return this.$store.webhooks.busyId === webhook.id;
    },

    deliveryState(delivery) {
      return STATE_LABELS[delivery.state] || delivery.state;
    },

    deliveryClass(delivery) {
      return STATE_PILLS[delivery.state] || 'pill';
    },

    deliveryDetail(delivery) {
      const parts = [`${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}`];
      if (delivery.last_status_code !== null) parts.push(`HTTP ${delivery.last_status_code}`);
      else if (delivery.last_error) parts.push(delivery.last_error);
      return parts.join(' · ');
    },

    deliveryTime(delivery) {
      return absoluteTime(delivery.last_attempt_at || delivery.next_attempt_at);
    },

    pingLabel(webhook) {
      return `Ping ${webhook.url}`;
    },

    enableLabel(webhook) {
      return `Enable ${webhook.url}`;
    },

    deleteLabel(webhook) {
      return this.isConfirmingDelete(webhook) ? `Confirm deleting ${webhook.url}` : `Delete ${webhook.url}`;
    },

    deleteText(webhook) {
      return this.isConfirmingDelete(webhook) ? 'Confirm delete' : 'Delete';
    },

    isConfirmingDelete(webhook) {
      return this.confirmingDeleteId === webhook.id;
    },

    async ping(webhook) {
      const result = await this.$store.webhooks.ping(webhook);
      this.report(result, `Ping queued for ${webhook.url}.`);
    },

    async enable(webhook) {
      const result = await this.$store.webhooks.enable(webhook);
      this.report(result, `${webhook.url} is enabled again.`);
    },

    async remove(webhook) {
      if (!this.isConfirmingDelete(webhook)) {
        this.confirmingDeleteId = webhook.id;
        return;
      }
      this.confirmingDeleteId = null;
      const result = await this.$store.webhooks.remove(webhook);
      this.report(result, `Webhook ${webhook.url} deleted: nothing more is sent to it.`);
    },

    report(result, success) {
      const notices = this.$store.notices;
      if (result.ok) {
        notices.dismissError();
        notices.say(success);
      } else {
        notices.fail(describeError(result.error));
      }
    },
  };
}
