// The members of the workspace on /settings: name, email, kind, the owner of an agent, and
// the role, as a <select> that saves on change when the server grants `manage_members`,
// read-only text otherwise. Success and refusals go to the page's live regions.

import { kindLabel } from '../lib/format.js';
import { roleLabel } from '../lib/format.js';

export default function membersTable() {
  return {
    init() {
      this.$store.members.load();
    },

    get items() {
      return this.$store.members.items;
    },

    get isLoading() {
      return this.$store.members.state === 'loading' && this.items.length === 0;
    },

    get hasFailed() {
      return this.$store.members.state === 'failed';
    },

    get problem() {
      return this.$store.members.problem;
    },

    get isEmpty() {
      return this.$store.members.state === 'ready' && this.items.length === 0;
    },

    get busy() {
      return this.$store.members.state === 'loading';
    },

    /** The server says whether this user may change roles (`capabilities`). */
    get canEdit() {
      return this.$store.session.can('manage_members');
    },

    get cannotEdit() {
      return !this.canEdit;
    },

    get readOnlyNote() {
      return this.$store.session.isKnown ? 'Only an admin can change roles.' : '';
    },

    retry() {
      this.$store.members.load();
    },

    isYou(member) {
      return this.$store.session.isKnown && this.$store.session.user.id === member.id;
    },

    memberName(member) {
      return this.isYou(member) ? `${member.name} (you)` : member.name;
    },

    kindLabel(member) {
      return kindLabel(member.kind);
    },

    kindClass(member) {
      return `kind kind-${member.kind}`;
    },

    hasOwner(member) {
      return Boolean(member.owner);
    },

    ownerName(member) {
      return member.owner ? member.owner.name : '';
    },

    roleLabel(member) {
      return roleLabel(member.role);
    },

    roleClass(member) {
      return `role role-${member.role}`;
    },

    hasRole(member, role) {
      return member.role === role;
    },

    roleSelectId(member) {
      return `member-role-${member.id}`;
    },

    roleSelectLabel(member) {
      return `Role of ${member.name}`;
    },

    isSaving(member) {
      return this.$store.members.savingId === member.id;
    },

    /** One role change at a time: every select waits while one is saved. */
    get isLocked() {
      return this.$store.members.savingId !== null;
    },

    /** Save the role picked in the row's <select>; on a refusal the select shows the server's role again. */
    async changeRole(member, event) {
      const select = event.target;
      const role = select.value;
      if (role === member.role) return;
      const notices = this.$store.notices;
      const result = await this.$store.members.changeRole(member, role);
      if (result.ok) {
        notices.dismissError();
        notices.say(`${result.member.name} is now ${roleLabel(result.member.role)}.`);
        // Your own role changed: what you may do here changed with it. If the selects go,
        // focus goes to the section rather than to the top of the page.
        if (this.isYou(result.member)) {
          await this.$store.session.load().catch(() => {});
          this.$nextTick(() => {
            if (!this.canEdit) this.$root.focus();
          });
        }
        return;
      }
      const current = this.$store.members.items.find((item) => item.id === member.id);
      select.value = current ? current.role : member.role;
      notices.fail(result.message);
    },
  };
}
