import type { ApiKeyService } from '../apikeys/types.js';
import { KeywardError } from '../errors.js';
import type { KeywardJwt } from '../keyward.js';
import { type ExtractCredentialOptions, extractCredential, type HeaderBag } from './credentials.js';
import { type Principal, principalFromApiKey, principalFromJwt } from './principal.js';

/** What {@link createAuthenticator} needs of a keyward instance. */
export interface AuthenticatorDeps {
  jwt: Pick<KeywardJwt, 'verify'>;
  apiKeys?: Pick<ApiKeyService, 'verify'>;
}

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions extends ExtractCredentialOptions {
  /** Accept API keys. Default true when the instance has an API-key service. */
  apiKeys?: boolean;
}

/** Authenticates requests the same way in every framework. */
export interface Authenticator {
  /** The principal, or throws `missing_credentials` / `invalid_request` / a token error. */
  authenticate(headers: HeaderBag): Promise<Principal>;
  /** The principal, `undefined` without credentials; a bad credential still throws. */
  optional(headers: HeaderBag): Promise<Principal | undefined>;
}

/**
 * Creates the framework-neutral authenticator: bearer JWT (verified in memory) or API key.
 *
 * @example
 * ```ts
 * const auth = createAuthenticator(kw)
 * const principal = await auth.authenticate(req.headers)
 * requireScopes(principal, ['admin'])
 * ```
 */
export function createAuthenticator(
  kw: AuthenticatorDeps,
  options: AuthenticatorOptions = {},
): Authenticator {
  const apiKeys = options.apiKeys === false ? undefined : kw.apiKeys;
  const extractOptions: ExtractCredentialOptions = {
    apiKeyHeader: apiKeys ? (options.apiKeyHeader ?? 'x-api-key') : false,
    ...(options.cookie ? { cookie: options.cookie } : {}),
  };
  async function optional(headers: HeaderBag): Promise<Principal | undefined> {
    const credential = extractCredential(headers, extractOptions);
    if (!credential) return undefined;
    if (credential.type === 'bearer') return principalFromJwt(kw.jwt.verify(credential.token));
    return principalFromApiKey(await (apiKeys as Pick<ApiKeyService, 'verify'>).verify(credential.key));
  }
  return {
    optional,
    async authenticate(headers) {
      const principal = await optional(headers);
      if (!principal) throw new KeywardError('missing_credentials', 'authentication required');
      return principal;
    },
  };
}

/**
 * Throws `insufficient_scope` (403) unless the principal has every scope.
 *
 * @example
 * ```ts
 * requireScopes(principal, ['admin'])
 * ```
 */
export function requireScopes(principal: Principal, scopes: readonly string[]): void {
  const missing = scopes.filter((s) => !principal.scopes.includes(s));
  if (missing.length > 0) {
    throw new KeywardError('insufficient_scope', `requires scope: ${scopes.join(' ')}`, {
      details: { scope: scopes.join(' ') },
    });
  }
}

/** Throws `insufficient_scope` (403) unless the principal has at least one of the roles. */
export function requireRoles(principal: Principal, roles: readonly string[]): void {
  if (roles.length > 0 && !roles.some((r) => principal.roles.includes(r))) {
    throw new KeywardError('insufficient_scope', `requires role: ${roles.join(' or ')}`, {
      details: { scope: roles.join(' ') },
    });
  }
}
