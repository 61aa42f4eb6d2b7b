import { wasAudited } from '../_internal/audited.js';
import type { ApiKeyService } from '../apikeys/types.js';
import { fingerprint } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import { isKeywardError, KeywardError } from '../errors.js';
import type { KeywardJwt } from '../keyward.js';
import type { IssuerVerifier } from '../tokens/issuers.js';
import { assertCookieName } from './cookie.js';
import {
  checkSameOrigin,
  type ExtractCredentialOptions,
  extractCredential,
  type HeaderBag,
  isMalformedBearer,
} from './credentials.js';
import { invalidRequest } from './errors.js';
import {
  type Principal,
  principalFromApiKey,
  principalFromExternalJwt,
  principalFromJwt,
} from './principal.js';

/** What {@link createAuthenticator} needs of a keyward instance. */
export interface AuthenticatorDeps {
  jwt: Pick<KeywardJwt, 'verify'>;
  apiKeys?: Pick<ApiKeyService, 'verify'>;
  /** When present, rejected credentials and missing scopes are audited as `access.denied` (rate-limited). */
  audit?: Pick<AuditLog, 'emit'>;
  /**
   * Trusted external issuers (`kw.issuers`, from the `trustedIssuers` option). A bearer token whose
   * `kid` keyward does not know is handed to it; keyward's own tokens never are.
   */
  issuers?: Pick<IssuerVerifier, 'verify'> | undefined;
}

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions extends ExtractCredentialOptions {
  /** Accept API keys. Default true when the instance has an API-key service. */
  apiKeys?: boolean;
  /** Accept bearer tokens (and the cookie). Default true; `false` for API-key-only routes. */
  bearer?: boolean;
  /**
   * Cookie mode: origins (`https://app.example.com`, exact match on the `Origin` header) whose
   * state-changing requests may use the `cookie` credential besides same-origin ones
   * (`Sec-Fetch-Site: same-origin` / `none`). Default none. Without `cookie` it has no effect.
   */
  allowedOrigins?: readonly string[];
}

/** Authenticates requests the same way in every framework. */
export interface Authenticator {
  /**
   * The cookie of cookie mode (the `cookie` option), or `undefined`. `handleRoute` sets it on
   * login and refresh and clears it on logout.
   */
  readonly cookie?: string | undefined;
  /**
   * The principal, or throws `missing_credentials` / `invalid_request` / a token error. In cookie
   * mode a token read from the cookie on a state-changing `method` (POST, PUT, PATCH, DELETE; an
   * omitted method counts as one) must pass the same-origin check, else `csrf_rejected` (403).
   */
  authenticate(headers: HeaderBag, method?: string): Promise<Principal>;
  /** The principal, `undefined` without credentials; a bad credential (or a cross-site cookie) still throws. */
  optional(headers: HeaderBag, method?: string): Promise<Principal | undefined>;
  /** Throws `insufficient_scope` (403, audited) unless the principal has every scope and one of the roles. */
  authorize(
    principal: Principal,
    requirements: { scopes?: readonly string[]; roles?: readonly string[] },
  ): void;
}

/** keyward's verifier does not know the token's kid: the token may be an external issuer's. */
function isUnknownKid(err: unknown): boolean {
  return isKeywardError(err, 'token_invalid') && err.details?.reason === 'kid_unknown';
}

/**
 * Creates the framework-neutral authenticator: bearer JWT (verified in memory) or API key.
 * With trusted external issuers (`trustedIssuers`), a bearer token whose `kid` keyward does not
 * know goes to the issuer verifier (async, jose, the issuer's cached JWKS); keyward's own tokens
 * stay on the synchronous path and are never verified twice. A token of no trusted issuer fails
 * with keyward's own error (`token_invalid`).
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
  const bearer = options.bearer !== false;
  if (options.cookie !== undefined) assertCookieName(options.cookie);
  if (
    options.allowedOrigins !== undefined &&
    !(Array.isArray(options.allowedOrigins) && options.allowedOrigins.every((o) => typeof o === 'string'))
  ) {
    throw new KeywardError('config_invalid', '"allowedOrigins" must be an array of origins');
  }
  const extractOptions: ExtractCredentialOptions = {
    apiKeyHeader: apiKeys ? (options.apiKeyHeader ?? 'x-api-key') : false,
    bearer,
    ...(options.cookie && bearer ? { cookie: options.cookie } : {}),
  };
  const audit = kw.audit;
  const issuers = kw.issuers;
  const allowedOrigins = Object.freeze([...(options.allowedOrigins ?? [])]);
  async function external(token: string, unknownKid: unknown, fromCookie: boolean): Promise<Principal> {
    try {
      return principalFromExternalJwt(await (issuers as Pick<IssuerVerifier, 'verify'>).verify(token), {
        fromCookie,
      });
    } catch (err) {
      // Not a trusted issuer's token either: answer as keyward's verifier did.
      if (isKeywardError(err) && err.details?.reason === 'issuer_untrusted') throw unknownKid;
      throw err;
    }
  }
  async function optional(headers: HeaderBag, method?: string): Promise<Principal | undefined> {
    const credential = extractCredential(headers, extractOptions);
    if (!credential) return undefined;
    let principal: Principal;
    try {
      if (credential.type === 'bearer') {
        const fromCookie = credential.fromCookie === true;
        try {
          principal = principalFromJwt(kw.jwt.verify(credential.token), { fromCookie });
        } catch (err) {
          if (issuers === undefined || !isUnknownKid(err)) throw err;
          principal = await external(credential.token, err, fromCookie);
        }
      } else {
        principal = principalFromApiKey(
          await (apiKeys as Pick<ApiKeyService, 'verify'>).verify(credential.key),
        );
      }
    } catch (err) {
      if (credential.type === 'bearer' && isMalformedBearer(credential.token)) {
        throw invalidRequest('the Authorization header is malformed');
      }
      // An error the API-key service has audited already is not audited twice.
      if (audit && isKeywardError(err) && !wasAudited(err)) {
        audit.emit({
          type: 'access.denied',
          code: err.code,
          via: credential.type === 'bearer' ? 'jwt' : 'api_key',
          // The credential appears only as a fingerprint, so repeated attempts can be correlated.
          tokenFingerprint: fingerprint(credential.type === 'bearer' ? credential.token : credential.key),
        });
      }
      throw err;
    }
    if (principal.fromCookie) {
      // Cookie mode: the browser adds the cookie to cross-site requests too (CSRF).
      try {
        checkSameOrigin(method, headers, allowedOrigins);
      } catch (err) {
        audit?.emit({ type: 'access.denied', code: 'csrf_rejected', via: principal.via, sub: principal.sub });
        throw err;
      }
    }
    return principal;
  }
  return {
    cookie: options.cookie && bearer ? options.cookie : undefined,
    optional,
    authorize(principal, requirements) {
      try {
        if (requirements.scopes) requireScopes(principal, requirements.scopes);
        if (requirements.roles) requireRoles(principal, requirements.roles);
      } catch (err) {
        if (audit && isKeywardError(err)) {
          audit.emit({ type: 'access.denied', code: err.code, via: principal.via, sub: principal.sub });
        }
        throw err;
      }
    },
    async authenticate(headers, method) {
      const principal = await optional(headers, method);
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
