// The /login page: "Try the demo" (a fresh demo workspace) or email and password.

import { api } from '../lib/api.js';

const QUEUE_PATH = '/deployments';

function loginProblem(error) {
  switch (error.code) {
    case 'unauthorized':
      return 'Wrong email or password.';
    case 'validation_error':
      return 'Enter an email address and a password.';
    case 'rate_limited':
      return error.retryAfterSeconds === null
        ? 'Too many sign-in attempts. Wait a minute, then try again.'
        : `Too many sign-in attempts. Wait ${error.retryAfterSeconds} seconds, then try again.`;
    case 'not_found':
      return 'The demo is turned off on this server.';
    case 'network':
      return 'Cannot reach the server. Check the connection and try again.';
    default:
      return error.message;
  }
}

export default function loginForm() {
  return {
    email: '',
    password: '',
    busy: false,
    problem: '',

    get demoLabel() {
      return this.busy ? 'Preparing a demo workspace…' : 'Try the demo';
    },

    get signInLabel() {
      return this.busy ? 'Signing in…' : 'Sign in';
    },

    async tryDemo() {
      await this.signInWith(() => api.post('/api/v1/auth/demo-login', {}, { redirectOnUnauthorized: false }));
    },

    async signIn() {
      await this.signInWith(() =>
        api.post(
          '/api/v1/auth/login',
          { email: this.email.trim(), password: this.password },
          { redirectOnUnauthorized: false },
        ),
      );
    },

    async signInWith(call) {
      if (this.busy) return;
      this.busy = true;
      this.problem = '';
      try {
        await call();
        window.location.assign(QUEUE_PATH);
      } catch (error) {
        this.problem = loginProblem(error);
        this.busy = false;
      }
    },
  };
}
