import { KeywardError } from '../errors.js';

/** Cookie-mode options as the examples read them from the environment (see {@link cookieModeFromEnv}). */
export interface CookieModeOptions {
  /** The cookie that carries the access token. */
  cookie?: string;
  /** Origins allowed to send state-changing requests with the cookie besides same-origin ones. */
  allowedOrigins?: string[];
}

// RFC 6265 §4.1.1: a cookie name is an RFC 7230 token.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$/;

/** Throws `config_invalid` unless `name` can be a cookie name. */
export function assertCookieName(name: string): void {
  if (!COOKIE_NAME.test(name))
    throw new KeywardError(
      'config_invalid',
      '"cookie" must be a cookie name (letters, digits, !#$%&\'*+-.^_`|~)',
    );
}

/**
 * Cookie mode from `KEYWARD_COOKIE` (the cookie name) and `KEYWARD_ALLOWED_ORIGINS`
 * (comma-separated origins, e.g. `https://a.example,https://b.example`). Empty when
 * `KEYWARD_COOKIE` is unset; an origin that is not `scheme://host[:port]` is `config_invalid`.
 *
 * @example
 * ```ts
 * const auth = keyward(kw, cookieModeFromEnv())
 * ```
 */
export function cookieModeFromEnv(env: Record<string, string | undefined> = process.env): CookieModeOptions {
  const cookie = env.KEYWARD_COOKIE?.trim();
  if (!cookie) return {};
  assertCookieName(cookie);
  const allowedOrigins = (env.KEYWARD_ALLOWED_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of allowedOrigins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin)
      throw new KeywardError(
        'config_invalid',
        `KEYWARD_ALLOWED_ORIGINS: "${origin.slice(0, 64)}" is not an origin (scheme://host[:port], no path)`,
      );
  }
  return { cookie, allowedOrigins };
}

// SameSite=Strict: the cookie is an API credential; no cross-site navigation needs it. Secure,
// HttpOnly (no script reads it), Path=/ (every route), no Domain (this host only).
const ATTRIBUTES = 'Path=/; HttpOnly; Secure; SameSite=Strict';

/** The `Set-Cookie` value that stores an access token in the cookie of cookie mode for `maxAgeSec`. */
export function setSessionCookie(name: string, token: string, maxAgeSec: number): string {
  return `${name}=${token}; Max-Age=${Math.max(0, Math.floor(maxAgeSec))}; ${ATTRIBUTES}`;
}

/** The `Set-Cookie` value that deletes the cookie of cookie mode. */
export function clearSessionCookie(name: string): string {
  return `${name}=; Max-Age=0; ${ATTRIBUTES}`;
}
