// The one way the page talks to /api/v1: JSON in and out, the session cookie, the
// double-submit CSRF header on state-changing requests, and the error envelope
// {"error": {"code", "message", "details"}} turned into an ApiError.

const CSRF_COOKIE = 'csrf_access_token';
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
export const LOGIN_PATH = '/login';

export class ApiError extends Error {
  constructor({ status, code, message, details = {}, retryAfterSeconds = null }) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.code = code;
    this.details = details;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

function readCookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(prefix)) return decodeURIComponent(trimmed.slice(prefix.length));
  }
  return null;
}

function retryAfterSeconds(response) {
  const header = response.headers.get('Retry-After');
  if (!header) return null;
  const seconds = Number.parseInt(header, 10);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header); // Retry-After may also be an HTTP date
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - Date.now()) / 1000)) : null;
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Send one request. Resolves with the parsed JSON body (null for 204); rejects with an
 * ApiError. A 401 sends the browser to /login unless `redirectOnUnauthorized` is false
 * (the login form itself expects 401 for a wrong password).
 */
export async function request(method, path, { body, redirectOnUnauthorized = true, headers: extra = {} } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (UNSAFE_METHODS.has(method)) {
    const csrf = readCookie(CSRF_COOKIE);
    if (csrf) headers['X-CSRF-TOKEN'] = csrf;
  }

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError({
      status: 0,
      code: 'network',
      message: 'The server could not be reached.',
    });
  }

  const payload = response.status === 204 ? null : await readJson(response);
  if (response.ok) return payload;

  if (response.status === 401 && redirectOnUnauthorized) {
    window.location.assign(LOGIN_PATH);
  }
  const envelope = payload && payload.error ? payload.error : {};
  throw new ApiError({
    status: response.status,
    code: envelope.code || `http_${response.status}`,
    message: envelope.message || `The server answered ${response.status}.`,
    details: envelope.details || {},
    retryAfterSeconds: retryAfterSeconds(response),
  });
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body = {}, options = {}) => request('POST', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
};
