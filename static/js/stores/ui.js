// Page-wide UI state: whether a modal dialog is open (the queue does not refresh under it),
// which action the drawer shows, and a clock that keeps "5 min ago" true.

export const CLOCK_TICK_MS = 20_000;

export function uiStore() {
  return {
    dialogOpen: false,
    openActionId: null, // the action shown in the drawer, highlighted in the table
    now: Date.now(),

    tick() {
      this.now = Date.now();
    },
  };
}
