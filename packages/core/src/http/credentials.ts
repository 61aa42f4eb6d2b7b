import { KeywardError } from '../errors.js';
import { invalidRequest } from './errors.js';

/** Request headers as Node gives them: lower-case names, string or string[] values. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/**
 * A credential found in a request. A bearer token read from the cookie (cookie mode) has
 * `fromCookie: true`: the browser sends it on its own, so a state-changing request carrying it must
 * pass {@link checkSameOrigin}.
 */
export type Credential =
  | { type: 'bearer'; token: string; fromCookie?: true }
  | { type: 'api_key'; key: string };

/** Options of {@link extractCredential}. */
export interface ExtractCredentialOptions {
  /** Accept an API key in this header. Default `x-api-key`; `false` to disable. */
  apiKeyHeader?: string | false;
  /**
   * Cookie mode: also read a bearer token from this cookie. An `Authorization` header in the same
   * request wins over the cookie (the cookie is ignored). Default: no cookie.
   */
  cookie?: string;
  /** Read `Authorization: Bearer`. Default true; when false the header is ignored (API-key-only routes). */
  bearer?: boolean;
  /**
   * An `Authorization` header of another scheme (`Basic …`, `Digest …`): `reject` (default) throws
   * `invalid_request`; `ignore` treats it as absent, as optional authentication does (a proxy's or
   * another library's credential is not keyward's to refuse). `Bearer` with a malformed token is
   * refused either way.
   */
  otherSchemes?: 'reject' | 'ignore';
}

function single(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) {
    if (value.length > 1) throw invalidRequest(`more than one ${name} header`);
    return value[0];
  }
  return value;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        // A hostile `%` sequence is the caller's malformed request, never a 500.
        throw invalidRequest(`the ${name} cookie is malformed`);
      }
    }
  }
  return undefined;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * True when a bearer token breaks RFC 6750's b64token grammar: the request, not the token, is
 * malformed (400 `invalid_request` rather than 401 `invalid_token`).
 */
export function isMalformedBearer(token: string): boolean {
  return !B64TOKEN.test(token);
}

/**
 * Finds the one credential of a request: `Authorization: Bearer` (scheme case-insensitive),
 * an API-key header, or an optional cookie. No credential: `undefined`. Another scheme
 * (`Basic …`): `invalid_request`, or no credential with `otherSchemes: 'ignore'`. A malformed header, or
 * two header credentials at once (`Authorization` and the API-key header, or the API-key header and
 * the cookie): `invalid_request`. `Authorization` and the cookie: the header wins, as with
 * `@fastify/jwt` and `hono/jwt` (an explicit credential beats the one the browser adds on its own).
 *
 * @example
 * ```ts
 * const credential = extractCredential(req.headers)
 * if (credential?.type === 'bearer') kw.jwt.verify(credential.token)
 * ```
 */
export function extractCredential(
  headers: HeaderBag,
  options: ExtractCredentialOptions = {},
): Credential | undefined {
  let found: Credential | undefined;
  const authorization = options.bearer === false ? undefined : single(headers, 'authorization');
  if (authorization !== undefined) {
    const space = authorization.indexOf(' ');
    const schemeLength = space < 0 ? authorization.length : space;
    // `Bearer` as sent by nearly every client needs no lower-casing (no allocation per request).
    const isBearer =
      schemeLength === 6 &&
      (authorization.startsWith('Bearer') || authorization.slice(0, 6).toLowerCase() === 'bearer');
    if (!isBearer) {
      if (options.otherSchemes !== 'ignore' || schemeLength === 0)
        throw invalidRequest('the Authorization header must use the Bearer scheme');
    } else {
      const token = space < 0 ? '' : authorization.slice(7).trim();
      // The full b64token grammar is checked only when verification fails (isMalformedBearer): a
      // regex over every token costs more than verifying a cached one.
      if (token === '' || token.indexOf(' ') !== -1)
        throw invalidRequest('the Authorization header is malformed');
      found = { type: 'bearer', token };
    }
  }
  const apiKeyHeader = options.apiKeyHeader === undefined ? 'x-api-key' : options.apiKeyHeader;
  if (apiKeyHeader) {
    const key = single(headers, apiKeyHeader);
    if (key !== undefined) {
      if (key.trim() === '') throw invalidRequest(`the ${apiKeyHeader} header is empty`);
      if (found !== undefined) throw severalCredentials();
      found = { type: 'api_key', key: key.trim() };
    }
  }
  // The Authorization header wins over the cookie: the cookie is not even parsed then.
  if (options.cookie && found?.type !== 'bearer') {
    const token = cookieValue(single(headers, 'cookie'), options.cookie);
    if (token) {
      if (found !== undefined) throw severalCredentials();
      found = { type: 'bearer', token, fromCookie: true };
    }
  }
  return found;
}

const severalCredentials = () =>
  invalidRequest('send exactly one credential (bearer token, API key or cookie), not several');

/** Methods that change nothing (RFC 9110 §9.2.1): a cookie credential needs no same-origin check on them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * True for a state-changing method (POST, PUT, PATCH, DELETE, anything not safe). An unknown
 * method (`undefined`) counts as state-changing: the check then fails closed.
 */
export function isStateChanging(method: string | undefined): boolean {
  return method === undefined || !SAFE_METHODS.has(method.toUpperCase());
}

/**
 * The cross-site request forgery check of cookie mode, for a state-changing request whose
 * credential came from the cookie: passes when the browser says the request is same-origin
 * (`Sec-Fetch-Site: same-origin`, or `none` for a user-initiated navigation) or when its `Origin`
 * is one of `allowedOrigins` (exact match, e.g. `https://app.example.com`). Anything else — a
 * `cross-site` or `same-site` request, an `Origin` not on the list, `Origin: null`, neither
 * header — throws `csrf_rejected` (403). A safe method (GET, HEAD, OPTIONS) always passes.
 *
 * @example
 * ```ts
 * if (credential?.type === 'bearer' && credential.fromCookie) checkSameOrigin(req.method, req.headers, ['https://app.example.com'])
 * ```
 */
export function checkSameOrigin(
  method: string | undefined,
  headers: HeaderBag,
  allowedOrigins: readonly string[] = [],
): void {
  if (!isStateChanging(method)) return;
  const site = headers['sec-fetch-site'];
  if (site === 'same-origin' || site === 'none') return;
  const origin = headers.origin;
  if (typeof origin === 'string' && allowedOrigins.includes(origin)) return;
  throw new KeywardError(
    'csrf_rejected',
    'a state-changing request authenticated by a cookie must come from the same origin or an allowed origin',
    { details: { site: typeof site === 'string' ? site.slice(0, 32) : undefined } },
  );
}
