// Where keyboard focus goes back to when a drawer or dialog closes.

/** The queue row of an action, if it is on screen. */
export function rowOf(actionId) {
  if (!actionId) return null;
  return document.querySelector(`tr[data-action-id="${CSS.escape(actionId)}"]`);
}

/** Focus `element` if it is still in the page and visible; report whether it did. */
export function focusIfPresent(element) {
  if (!element || !element.isConnected || element.getClientRects().length === 0) return false;
  element.focus();
  return document.activeElement === element;
}

/** Focus the first of `candidates` that can still take focus. */
export function restoreFocus(...candidates) {
  for (const candidate of candidates) {
    if (focusIfPresent(candidate)) return true;
  }
  return false;
}
