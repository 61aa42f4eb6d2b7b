import { invalidRequest } from './errors.js';

/** Request headers as Node gives them: lower-case names, string or string[] values. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** A credential found in a request. */
export type Credential = { type: 'bearer'; token: string } | { type: 'api_key'; key: string };

/** Options of {@link extractCredential}. */
export interface ExtractCredentialOptions {
  /** Accept an API key in this header. Default `x-api-key`; `false` to disable. */
  apiKeyHeader?: string | false;
  /** Also read a bearer token from this cookie. Default: no cookie. */
  cookie?: string;
  /** Read `Authorization: Bearer`. Default true; when false the header is ignored (API-key-only routes). */
  bearer?: boolean;
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
 * an API-key header, or an optional cookie. No credential: `undefined`. A malformed header, or
 * two credentials at once: `invalid_request`.
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
  const found: Credential[] = [];
  const authorization = options.bearer === false ? undefined : single(headers, 'authorization');
  if (authorization !== undefined) {
    const space = authorization.indexOf(' ');
    const scheme = space < 0 ? authorization : authorization.slice(0, space);
    const token = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme.toLowerCase() !== 'bearer')
      throw invalidRequest('the Authorization header must use the Bearer scheme');
    // The full b64token grammar is checked only when verification fails (isMalformedBearer): a
    // regex over every token costs more than verifying a cached one.
    if (token === '' || token.indexOf(' ') !== -1)
      throw invalidRequest('the Authorization header is malformed');
    found.push({ type: 'bearer', token });
  }
  const apiKeyHeader = options.apiKeyHeader === undefined ? 'x-api-key' : options.apiKeyHeader;
  if (apiKeyHeader) {
    const key = single(headers, apiKeyHeader);
    if (key !== undefined) {
      if (key.trim() === '') throw invalidRequest(`the ${apiKeyHeader} header is empty`);
      found.push({ type: 'api_key', key: key.trim() });
    }
  }
  if (options.cookie) {
    const token = cookieValue(single(headers, 'cookie'), options.cookie);
    if (token) found.push({ type: 'bearer', token });
  }
  if (found.length > 1)
    throw invalidRequest('send exactly one credential (bearer token, API key or cookie), not several');
  return found[0];
}
