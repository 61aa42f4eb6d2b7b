import type { ApiKeyService } from '../apikeys/types.js';
import { isKeywardError, type KeywardErrorCode } from '../errors.js';
import type { JwtClaims } from '../jwt/types.js';
import type { KeywardJwt } from '../keyward.js';
import type { TokenService } from '../tokens/types.js';
import type { HeaderBag } from './credentials.js';
import { INVALID_TOKEN, invalidBody, invalidRequest, isBodyType } from './errors.js';

/** Longest `token` accepted by the OAuth endpoints (16 KiB); a longer one is `invalid_request`. */
export const MAX_OAUTH_TOKEN_LENGTH = 16 * 1024;

/** True when the request says its body is `application/x-www-form-urlencoded`. */
export function isFormRequest(headers: HeaderBag): boolean {
  return isBodyType(headers['content-type'], 'form');
}

/**
 * The fields of a form-encoded body as an adapter parsed it (an object of strings, or of string
 * arrays for repeated fields), or the raw `a=b&c=d` text. Anything else is `invalid_request`.
 */
export function formFields(headers: HeaderBag, body: unknown): Record<string, unknown> {
  if (!isFormRequest(headers)) throw invalidBody('unsupported_type', 'form');
  if (body === undefined || body === null || body === '') return {};
  if (typeof body === 'string') {
    // No prototype: a field named `__proto__` is just a field.
    const fields: Record<string, string | string[]> = Object.create(null);
    for (const [name, value] of new URLSearchParams(body)) {
      const seen = fields[name];
      fields[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
    }
    return fields;
  }
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidBody('malformed', 'form');
  return body as Record<string, unknown>;
}

/** One form field: a single string (RFC 6749 §3.1: a parameter is never sent twice). */
export function formField(
  fields: Record<string, unknown>,
  name: string,
  options: { max: number; optional?: boolean },
): string | undefined {
  const value = fields[name];
  if (value === undefined && options.optional) return undefined;
  if (Array.isArray(value)) throw invalidRequest(`"${name}" must be sent once`);
  if (typeof value !== 'string' || value.length === 0) throw invalidRequest(`"${name}" is required`);
  if (value.length > options.max) throw invalidRequest(`"${name}" is longer than ${options.max} characters`);
  return value;
}

/**
 * The RFC 7662 introspection answer. An inactive token is `{active: false}` and nothing else; an
 * active one carries the members that apply to it.
 */
export interface IntrospectionResponse {
  active: boolean;
  /** The subject: the user of an access or refresh token, the owner of an API key. */
  sub?: string;
  /** Space-separated scopes. */
  scope?: string;
  /** Expiry, seconds since the epoch (absent for an API key without expiry). */
  exp?: number;
  /** Issue time, seconds since the epoch (access tokens). */
  iat?: number;
  /** Issuer (the token's `iss`; for refresh tokens and API keys, the instance's `issuer` option). */
  iss?: string;
  /** The token's `client_id` claim, only when it has one. */
  client_id?: string;
  /**
   * `Bearer` for an access token (RFC 6749 §5.1, as RFC 7662 asks); RFC 6749 gives refresh
   * tokens and API keys no type, so they are `refresh_token` (RFC 7009's hint name) and `api_key`.
   */
  token_type?: 'Bearer' | 'refresh_token' | 'api_key';
}

/** What kind of credential a string looks like (by shape; a hint never overrides the shape). */
export type TokenKind = 'access_token' | 'refresh_token' | 'api_key' | 'unknown';

/** Classifies a presented token by its shape: `rt_…` refresh, `kw_…` API key, `a.b.c` JWS. */
export function tokenKind(token: string): TokenKind {
  if (token.startsWith('rt_')) return 'refresh_token';
  if (token.startsWith('kw_')) return 'api_key';
  if (token.split('.').length === 3) return 'access_token';
  return 'unknown';
}

/** Errors that mean "this credential is not (or no longer) good", as opposed to a server problem. */
const INACTIVE: ReadonlySet<KeywardErrorCode> = new Set<KeywardErrorCode>([
  ...INVALID_TOKEN,
  'key_not_found',
]);

/** True when `err` says the credential is bad (inactive), false for anything else (rethrow it). */
export function isInactiveCredential(err: unknown): boolean {
  return isKeywardError(err) && INACTIVE.has(err.code);
}

/** What {@link introspect} needs of a keyward instance. */
export interface IntrospectionDeps {
  jwt: Pick<KeywardJwt, 'verify'>;
  tokens: Pick<TokenService, 'inspectRefresh'>;
  apiKeys: Pick<ApiKeyService, 'verify'>;
  /** The `issuer` option, reported as `iss` for opaque credentials. */
  issuer?: string | undefined;
  /** The `clientId` option: the `client_id` of the access tokens a refresh token yields. */
  clientId?: string | undefined;
}

const seconds = (ms: number) => Math.floor(ms / 1000);
const inactive = (): IntrospectionResponse => ({ active: false });

function fromClaims(claims: JwtClaims): IntrospectionResponse {
  return {
    active: true,
    ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
    ...(typeof claims.scope === 'string' && claims.scope !== '' ? { scope: claims.scope } : {}),
    exp: claims.exp,
    ...(typeof claims.iat === 'number' ? { iat: claims.iat } : {}),
    ...(typeof claims.iss === 'string' ? { iss: claims.iss } : {}),
    ...(typeof claims.client_id === 'string' ? { client_id: claims.client_id } : {}),
    token_type: 'Bearer',
  };
}

/**
 * RFC 7662 introspection of an access token, refresh token or API key: revocation-aware (a revoked
 * key, a logged-out token, a revoked family, an expired token are `{active: false}`) and
 * read-only for refresh tokens (they are not spent). A server-side failure (store down) rejects
 * instead of answering `active: false`.
 *
 * @example
 * ```ts
 * const answer = await introspect({ jwt: kw.jwt, tokens: kw.tokens, apiKeys: kw.apiKeys }, token)
 * if (!answer.active) deny()
 * ```
 */
export async function introspect(deps: IntrospectionDeps, token: string): Promise<IntrospectionResponse> {
  const iss = deps.issuer === undefined ? {} : { iss: deps.issuer };
  try {
    switch (tokenKind(token)) {
      case 'access_token':
        return fromClaims(deps.jwt.verify(token).payload);
      case 'refresh_token': {
        const info = await deps.tokens.inspectRefresh(token);
        if (!info) return inactive();
        const clientId = info.claims.client_id ?? deps.clientId;
        return {
          active: true,
          sub: info.sub,
          ...(info.scopes.length > 0 ? { scope: info.scopes.join(' ') } : {}),
          exp: seconds(info.expiresAt),
          ...iss,
          ...(typeof clientId === 'string' ? { client_id: clientId } : {}),
          token_type: 'refresh_token',
        };
      }
      case 'api_key': {
        const key = await deps.apiKeys.verify(token);
        return {
          active: true,
          sub: key.owner,
          ...(key.scopes.length > 0 ? { scope: key.scopes.join(' ') } : {}),
          ...(key.expiresAt !== null ? { exp: seconds(key.expiresAt) } : {}),
          ...iss,
          token_type: 'api_key',
        };
      }
      default:
        return inactive();
    }
  } catch (err) {
    if (isInactiveCredential(err)) return inactive();
    throw err;
  }
}
