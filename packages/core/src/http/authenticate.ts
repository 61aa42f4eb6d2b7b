import { wasAudited } from '../_internal/audited.js';
import { markRealm } from '../_internal/realm.js';
import type { ApiKeyService } from '../apikeys/types.js';
import { fingerprint } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import { isKeywardError, KeywardError } from '../errors.js';
import type { KeywardJwt } from '../keyward.js';
import type { IssuerVerifier } from '../tokens/issuers.js';
import { assertCookieName } from './cookie.js';
import {
  type Credential,
  checkSameOrigin,
  type ExtractCredentialOptions,
  extractCredential,
  type HeaderBag,
  isMalformedBearer,
} from './credentials.js';
import { DEFAULT_REALM, invalidRequest, isValidRealm } from './errors.js';
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
export interface AuthenticatorOptions extends Omit<ExtractCredentialOptions, 'otherSchemes'> {
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
  /**
   * A custom token extractor (express-jwt's `getToken`, passport-jwt's `jwtFromRequest`), called
   * with the request's headers and the framework's own request as the adapter passes it (Express
   * `req`, Fastify `request`, Hono `c`, NestJS the HTTP request; `undefined` when the caller passed
   * none). It replaces reading `Authorization: Bearer`: a returned string is verified exactly like
   * a bearer token (same errors, revocation and key checks, external issuers, audit); `undefined`
   * or `null` means "no token" (then the API-key header is still read, when enabled). May be async.
   * A thrown `KeywardError` is answered as such; anything else, or a return value that is not a
   * string, `undefined` or `null`, is a server error (500). Cannot be combined with `cookie`:
   * cookie mode's cross-site check applies to the cookie keyward reads itself.
   *
   * @example
   * ```ts
   * getToken: (headers) => typeof headers['x-access-token'] === 'string' ? headers['x-access-token'] : undefined
   * ```
   */
  getToken?: (
    headers: HeaderBag,
    request: unknown,
  ) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Called with every principal the authenticator verified (own JWT, API key, external issuer,
   * cookie), on every request, with the framework's request as for `getToken`: return the
   * principal to use, the same or a changed one (add roles or fields from your database:
   * express-jwt's `formatUser`), or throw a `KeywardError` to refuse (a disabled user, an
   * application-level revocation list: express-jwt's `isRevoked`), e.g.
   * `new KeywardError('token_revoked', 'user disabled')` (401 with the challenge) or
   * `insufficient_scope` (403); a refusal is audited as `access.denied`. Anything else thrown, or a
   * return value that is not a principal, is a server error: `toHttpProblem` (the contract routes)
   * answers 500 `internal_error` without its message; the adapters' middleware hands it, like any
   * error of your code, to the framework's error handling (Express `next(err)`, Fastify's error
   * handler, Hono's `onError`, Nest's exception layer). May be async. A verified JWT's principal is frozen and shared: return a new object
   * (`{ ...principal, roles: [...] }`) rather than changing it.
   *
   * @example
   * ```ts
   * onAuthenticated: async (principal) => {
   *   if (await db.isDisabled(principal.sub)) throw new KeywardError('token_revoked', 'user disabled')
   *   return { ...principal, roles: [...principal.roles, ...(await db.rolesOf(principal.sub))] }
   * }
   * ```
   */
  onAuthenticated?: (principal: Principal, request: unknown) => Principal | Promise<Principal>;
  /**
   * The realm of the `WWW-Authenticate` challenges this authenticator's refusals carry
   * (`Bearer realm="…"`), and of the contract routes' refusals served with it. Printable ASCII
   * without `"` and `\`, at most 128 characters. Default `keyward`.
   */
  realm?: string;
}

/**
 * The hooks of an adapter's options, which take the framework's own request (`getToken(req)`,
 * `onAuthenticated(principal, req)`). See {@link withRequestHooks}.
 */
export interface RequestHooks<R> {
  getToken?: (request: R) => string | null | undefined | Promise<string | null | undefined>;
  onAuthenticated?: (principal: Principal, request: R) => Principal | Promise<Principal>;
}

/**
 * Core's authenticator options from an adapter's: its hooks get the framework's request, which the
 * adapter hands to `authenticate(headers, method, request)` as it is, or as `requestOf` makes it
 * (NestJS: an empty request where a guard runs outside HTTP). A value that is not a function
 * passes unchanged, so {@link createAuthenticator} refuses it (`config_invalid`).
 *
 * @example
 * ```ts
 * createAuthenticator(kw, withRequestHooks<Request>({ getToken: (req) => req.get('x-access-token') }))
 * ```
 */
export function withRequestHooks<R>(
  options: Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'> & RequestHooks<R>,
  requestOf: (request: unknown) => R = (request) => request as R,
): AuthenticatorOptions {
  const { getToken, onAuthenticated, ...rest } = options;
  const mapped: AuthenticatorOptions = { ...rest };
  if (getToken !== undefined)
    mapped.getToken =
      typeof getToken === 'function'
        ? (_headers, request) => getToken(requestOf(request))
        : (getToken as never);
  if (onAuthenticated !== undefined)
    mapped.onAuthenticated =
      typeof onAuthenticated === 'function'
        ? (principal, request) => onAuthenticated(principal, requestOf(request))
        : (onAuthenticated as never);
  return mapped;
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
   * `request` is the framework's own request, handed to the `getToken` and `onAuthenticated`
   * options as is.
   */
  authenticate(headers: HeaderBag, method?: string, request?: unknown): Promise<Principal>;
  /**
   * The principal, `undefined` without credentials; a bad credential (or a cross-site cookie) still
   * throws. An `Authorization` header of another scheme than `Bearer` (`Basic …`) counts as no
   * credential here (`authenticate` refuses it with `invalid_request`).
   */
  optional(headers: HeaderBag, method?: string, request?: unknown): Promise<Principal | undefined>;
  /**
   * {@link Authenticator.authenticate} (`required`, the default) or {@link Authenticator.optional}
   * without a promise when none is needed: keyward's own tokens without async hooks are verified
   * synchronously, so the principal is returned (or the refusal thrown) at once; API keys,
   * external issuers, `getToken` and `onAuthenticated` give a promise. For adapters whose
   * framework lets a hook finish synchronously (Fastify's `done`, Express's `next`), so keyward's
   * hot path allocates no promise at all. `method` matters only in cookie mode (the same-origin
   * check of state-changing requests).
   *
   * @example
   * ```ts
   * const outcome = auth.identify(req.headers, req.method, req)
   * if (outcome instanceof Promise) outcome.then((p) => next(p), fail)
   * else next(outcome)
   * ```
   */
  identify(
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
    required?: true,
  ): Principal | Promise<Principal>;
  identify(
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
    required: boolean,
  ): Principal | undefined | Promise<Principal | undefined>;
  /**
   * The `realm` option (`keyward` by default): the realm of this authenticator's challenges, also
   * given by {@link handleRoute} to the refusals of the routes it serves with this authenticator.
   */
  readonly realm?: string;
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
  const { getToken, onAuthenticated } = options;
  if (getToken !== undefined && typeof getToken !== 'function')
    throw new KeywardError('config_invalid', '"getToken" must be a function');
  if (onAuthenticated !== undefined && typeof onAuthenticated !== 'function')
    throw new KeywardError('config_invalid', '"onAuthenticated" must be a function');
  if (getToken !== undefined && options.cookie !== undefined) {
    throw new KeywardError(
      'config_invalid',
      '"getToken" and "cookie" cannot be combined: the cross-site check of cookie mode applies to the cookie keyward reads itself',
    );
  }
  if (options.realm !== undefined && !isValidRealm(options.realm)) {
    throw new KeywardError(
      'config_invalid',
      '"realm" must be 1 to 128 printable ASCII characters without quotes or backslashes',
    );
  }
  const realm = options.realm ?? DEFAULT_REALM;
  // With getToken, the bearer token comes from it: the Authorization header is not read.
  const readsHeader = bearer && getToken === undefined;
  const extractOptions: ExtractCredentialOptions = {
    apiKeyHeader: apiKeys ? (options.apiKeyHeader ?? 'x-api-key') : false,
    bearer: readsHeader,
    ...(options.cookie && bearer ? { cookie: options.cookie } : {}),
  };
  const optionalExtract: ExtractCredentialOptions = { ...extractOptions, otherSchemes: 'ignore' };
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
  /** The credential of a request, with `getToken` (which may be async) in place of the header. */
  async function extractWithGetToken(
    headers: HeaderBag,
    request: unknown,
    required: boolean,
  ): Promise<Credential | undefined> {
    const found = extractCredential(headers, required ? extractOptions : optionalExtract);
    if (!bearer) return found;
    const token = await (getToken as NonNullable<typeof getToken>)(headers, request);
    if (token === undefined || token === null) return found;
    if (typeof token !== 'string') throw new TypeError('getToken must return a string, undefined or null');
    if (token === '' || token.indexOf(' ') !== -1) throw invalidRequest('the access token is malformed');
    if (found !== undefined)
      throw invalidRequest('send exactly one credential (bearer token, API key or cookie), not several');
    return { type: 'bearer', token };
  }
  /**
   * The principal of a request. Synchronous for keyward's own bearer tokens without hooks (the hot
   * path: no promise until the caller's one); a promise when anything async is involved (API keys,
   * external issuers, `getToken`, `onAuthenticated`). Throws or rejects with the refusal.
   */
  function identify(
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
    required: boolean,
  ): Principal | undefined | Promise<Principal | undefined> {
    if (getToken !== undefined) {
      return extractWithGetToken(headers, request, required).then((credential) =>
        credential === undefined ? undefined : settle(credential, headers, method, request),
      );
    }
    const credential = extractCredential(headers, required ? extractOptions : optionalExtract);
    return credential === undefined ? undefined : settle(credential, headers, method, request);
  }
  function settle(
    credential: Credential,
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
  ): Principal | Promise<Principal> {
    if (credential.type === 'bearer') {
      const fromCookie = credential.fromCookie === true;
      let principal: Principal;
      try {
        principal = principalFromJwt(kw.jwt.verify(credential.token), { fromCookie });
      } catch (err) {
        if (issuers === undefined || !isUnknownKid(err)) throw refused(credential, err);
        return external(credential.token, err, fromCookie).then(
          (p) => accepted(p, headers, method, request),
          (e: unknown) => {
            throw refused(credential, e);
          },
        );
      }
      return accepted(principal, headers, method, request);
    }
    return (apiKeys as Pick<ApiKeyService, 'verify'>).verify(credential.key).then(
      (key) => accepted(principalFromApiKey(key), headers, method, request),
      (e: unknown) => {
        throw refused(credential, e);
      },
    );
  }
  /** The error to answer for a credential that failed verification, audited. */
  function refused(credential: Credential, err: unknown): unknown {
    if (credential.type === 'bearer' && isMalformedBearer(credential.token)) {
      return invalidRequest(
        getToken ? 'the access token is malformed' : 'the Authorization header is malformed',
      );
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
    return err;
  }
  /** A verified principal past the cookie check and `onAuthenticated`. */
  function accepted(
    principal: Principal,
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
  ): Principal | Promise<Principal> {
    if (principal.fromCookie) {
      // Cookie mode: the browser adds the cookie to cross-site requests too (CSRF).
      try {
        checkSameOrigin(method, headers, allowedOrigins);
      } catch (err) {
        audit?.emit({ type: 'access.denied', code: 'csrf_rejected', via: principal.via, sub: principal.sub });
        throw err;
      }
    }
    return onAuthenticated === undefined ? principal : mapped(principal, request);
  }
  async function mapped(verified: Principal, request: unknown): Promise<Principal> {
    let principal: Principal;
    try {
      principal = await (onAuthenticated as NonNullable<typeof onAuthenticated>)(verified, request);
    } catch (err) {
      if (audit && isKeywardError(err)) {
        audit.emit({ type: 'access.denied', code: err.code, via: verified.via, sub: verified.sub });
      }
      throw err;
    }
    if (!isPrincipal(principal)) throw new TypeError('onAuthenticated must return a principal');
    return principal;
  }
  const failed = (err: unknown): never => {
    if (realm !== DEFAULT_REALM) markRealm(err, realm);
    throw err;
  };
  const missing = (principal: Principal | undefined): Principal => {
    if (!principal) throw new KeywardError('missing_credentials', 'authentication required');
    return principal;
  };
  /** `identify` with the refusals of a required credential, the realm marked on every refusal. */
  function now(
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
    required: boolean,
  ): Principal | undefined | Promise<Principal | undefined> {
    try {
      const outcome = identify(headers, method, request, required);
      if (!(outcome instanceof Promise)) return required ? missing(outcome) : outcome;
      const settled = required ? outcome.then(missing) : outcome;
      return realm === DEFAULT_REALM ? settled : settled.catch(failed);
    } catch (err) {
      return failed(err);
    }
  }
  /** `now` as one promise (no closure: this is every request's path). */
  function promised(
    headers: HeaderBag,
    method: string | undefined,
    request: unknown,
    required: boolean,
  ): Promise<Principal | undefined> {
    try {
      const outcome = now(headers, method, request, required);
      return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  const authenticator: Authenticator = {
    cookie: options.cookie && bearer ? options.cookie : undefined,
    realm,
    identify: ((headers: HeaderBag, method: string | undefined, request: unknown, required = true) =>
      now(headers, method, request, required)) as Authenticator['identify'],
    optional: (headers, method, request) => promised(headers, method, request, false),
    authenticate: (headers, method, request) =>
      promised(headers, method, request, true) as Promise<Principal>,
    authorize(principal, requirements) {
      try {
        if (requirements.scopes) requireScopes(principal, requirements.scopes);
        if (requirements.roles) requireRoles(principal, requirements.roles);
      } catch (err) {
        if (audit && isKeywardError(err)) {
          audit.emit({ type: 'access.denied', code: err.code, via: principal.via, sub: principal.sub });
        }
        failed(err);
      }
    },
  };
  return authenticator;
}

/** What `onAuthenticated` must return: a principal's shape (checked, not trusted). */
function isPrincipal(value: unknown): value is Principal {
  const p = value as Partial<Principal> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.sub === 'string' &&
    Array.isArray(p.scopes) &&
    Array.isArray(p.roles) &&
    typeof p.claims === 'object' &&
    p.claims !== null &&
    (p.via === 'jwt' || p.via === 'api_key')
  );
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
