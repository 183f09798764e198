// The page's two aria-live regions: `status` for what just happened (polite), `error` for
// what went wrong (assertive). Components write here; templates/partials/notices.html shows it.

function announce(store, key, text) {
  // Setting the same text again would not be re-announced; clear it for a frame first.
  if (store[key] === text) {
    store[key] = '';
    window.requestAnimationFrame(() => {
      store[key] = text;
    });
  } else {
    store[key] = text;
  }
}

export function noticesStore() {
  return {
    status: '',
    error: '',

    say(text) {
      announce(this, 'status', text);
    },

    fail(text) {
      announce(this, 'error', text);
    },

    dismissError() {
      this.error = '';
    },
  };
}
