import { createHash } from 'node:crypto';
import { markRealm } from '../_internal/realm.js';
import type { ApiKeyService } from '../apikeys/types.js';
import { AUDIT_EVENT_TYPES, type AuditEventType } from '../audit/events.js';
import { isKeywardError, KeywardError } from '../errors.js';
import type { HealthReport } from '../health/types.js';
import { isSymmetric } from '../keys/algorithms.js';
import { type RotationAction, simulateRotation } from '../keys/rotation-plan.js';
import type { KeyRecord, KeyUse } from '../keys/types.js';
import type { KeywardCore, KeywardJwt } from '../keyward.js';
import type { RateLimitedRoute, RateLimiter, RateLimitSubject } from '../ratelimit/limiter.js';
import type { SecretService } from '../secrets/types.js';
import type { TokenService } from '../tokens/types.js';
import type { Authenticator } from './authenticate.js';
import { clearSessionCookie, setSessionCookie } from './cookie.js';
import type { HeaderBag } from './credentials.js';
import {
  type BodyFormat,
  type DeniedHook,
  type HttpProblem,
  invalidBody,
  invalidParams,
  invalidRequest,
  isBodyType,
  reportProblem,
} from './errors.js';
import {
  formField,
  formFields,
  introspect,
  isInactiveCredential,
  MAX_OAUTH_TOKEN_LENGTH,
  tokenKind,
} from './oauth.js';
import { ownerOf, type Principal } from './principal.js';
import { issueForUser, type UserDirectory } from './users.js';

/** A framework-neutral request: what an adapter hands to {@link handleRoute}. */
export interface HttpRequest {
  headers: HeaderBag;
  params: Record<string, string | undefined>;
  /**
   * The query string's parameters (a repeated one as an array), as the framework parsed them.
   * Only the read-only admin routes take any (`GET /admin/audit?type=&limit=`,
   * `GET /admin/keys/plan?horizon=`); absent, they answer their defaults.
   */
  query?: Record<string, string | string[] | undefined>;
  /**
   * The parsed body, or `undefined`: JSON for most routes; for a route with `body: 'form'` the
   * form's fields (`{name: value}`, a repeated field as an array) or the raw form text. Adapters
   * parse it with the framework's own body parser.
   */
  body: unknown;
  /**
   * The client's address as the framework reports it (Express `req.ip`, Fastify `request.ip`…;
   * the framework's trust-proxy setting decides whether a forwarded address counts). The login
   * and refresh limiter counts per address with it; absent, only the per-user limit applies.
   */
  remoteAddress?: string | undefined;
  /**
   * The framework's own request (Express `req`, Fastify `request`, Hono `c`…), handed as is to the
   * authenticator's `getToken` and `onAuthenticated` options. Optional: `undefined` when the
   * adapter passes none.
   */
  native?: unknown;
}

/** A framework-neutral response: the adapter writes status, headers and body in its idiom. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** A JSON value, a text body (with its `content-type` in `headers`), or `undefined` for none. */
  body?: unknown;
}

/** One route of the HTTP contract. */
export interface KeywardRoute {
  /** Stable name, for adapters that expose routes one by one. */
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /**
   * Express-style path with `:params`. In {@link keywardRoutes}' answer, the path the route is
   * served at (with the `prefix`); a {@link RouteSet} returns its paths without it.
   */
  path: string;
  /**
   * `none`: public; `required`: any credential; `scopes`: a credential with all of them;
   * `anyScope`: a credential with at least one of them (else 403 naming the first).
   */
  auth: 'none' | 'required' | { scopes: readonly string[] } | { anyScope: readonly string[] };
  /**
   * The body the route takes: `json` (default) or `form` (`application/x-www-form-urlencoded`
   * only, the OAuth endpoints of RFC 7662 / RFC 7009). Adapters parse it accordingly.
   */
  body?: BodyFormat;
  /**
   * Cookie mode (the authenticator's `cookie`): `set` stores the answer's `access_token` in the
   * cookie (login, refresh), `clear` deletes it (logout). {@link handleRoute} adds the `Set-Cookie`.
   */
  sessionCookie?: 'set' | 'clear';
  handle(request: HttpRequest, principal: Principal | undefined): Promise<HttpResponse>;
}

/**
 * What the contract routes need of a keyward instance. A `Keyward` from `createKeyward()` fits;
 * without `audit`, `instances` or `now` the admin routes that read them are not served.
 */
export interface RouteDeps
  extends Pick<KeywardCore, 'keys' | 'policy'>,
    Partial<Pick<KeywardCore, 'issuer' | 'audit' | 'instances' | 'now'>> {
  /** Verifies access tokens for `POST /oauth/introspect` and `POST /oauth/revoke`. */
  jwt: Pick<KeywardJwt, 'verify'>;
  /** The instance's options; `issuer` is reported as `iss` when introspecting opaque tokens. */
  options?: { readonly issuer?: string | undefined; readonly clientId?: string | undefined };
  tokens: TokenService;
  apiKeys: ApiKeyService;
  secrets: SecretService;
  health(options?: { ready?: boolean }): Promise<HealthReport>;
  metrics: { text(): Promise<string>; contentType: string };
  /** The brute-force limiter of login and refresh (`Keyward.rateLimit`); absent or `undefined`: none. */
  rateLimit?: Pick<RateLimiter, 'attempt'> | undefined;
}

/** The groups of core's own routes, each of which `include` can name. */
export type RouteGroup =
  | 'auth'
  | 'me'
  | 'admin'
  | 'apiKeys'
  | 'secrets'
  | 'jwks'
  | 'discovery'
  | 'health'
  | 'metrics'
  | 'oauth';

/**
 * A named group of routes from outside core (`@keyward/console` is one). {@link keywardRoutes}
 * serves it only when `include` names its `group`, so an extra set is off by default; every adapter
 * mounts its routes exactly like core's own, with no adapter change.
 */
export interface RouteSet {
  /** The name `include` uses, e.g. `console`; must not be one of core's {@link RouteGroup}s. */
  readonly group: string;
  /** The set's routes, built once per route table. */
  routes(kw: RouteDeps, options: KeywardRoutesOptions): readonly KeywardRoute[];
}

/** Options of {@link keywardRoutes}. */
export interface KeywardRoutesOptions {
  /** Checks usernames and passwords for `POST /auth/login`. Without it the route is not served. */
  users?: UserDirectory;
  /**
   * Which groups of routes to serve: core's {@link RouteGroup}s and the `group` of any of
   * `routeSets`. Default: all of core's groups, none of `routeSets`.
   */
  include?: ReadonlyArray<RouteGroup | (string & {})>;
  /** Extra route groups served when `include` names them (the console). */
  routeSets?: readonly RouteSet[];
  /**
   * Let shared caches (CDNs, proxies) keep the JWKS: `Cache-Control: public, max-age=…`. A shared
   * cache then serves a revoked key for up to `max-age` too. Default false: `private, max-age=…`,
   * only each verifier's own cache holds it.
   */
  jwksSharedCache?: boolean;
  /** True once the process is shutting down: readiness then answers 503. */
  isShuttingDown?: () => boolean;
  /**
   * A path every route is served under, e.g. `/api` (`/api/auth/login`): starts with `/`, no
   * trailing `/`, no `..`, no `:params` or wildcards; else `config_invalid`. The discovery documents
   * report their endpoints under it. Mount the routes at the application's root and pass the prefix
   * here, never both (that doubles it). `/.well-known/*` routes stay at the root unless
   * `wellKnown: 'prefixed'`. Default: none.
   */
  prefix?: string;
  /**
   * Where the `/.well-known/*` routes (JWKS, discovery) are served when `prefix` is set: `root`
   * (default; where verifiers and RFC 8414 look for them) or `prefixed` (under `prefix` like the rest).
   */
  wellKnown?: 'root' | 'prefixed';
}

/** One segment of a route prefix: unreserved URL characters only (RFC 3986 §2.3), never `.` or `..`. */
const PREFIX_SEGMENT = /^[A-Za-z0-9._~-]+$/;

/**
 * The validated `prefix` of {@link KeywardRoutesOptions} (`''` for none), or throws `config_invalid`.
 *
 * @example
 * ```ts
 * routePrefix('/api') // '/api'
 * routePrefix('/api/') // throws config_invalid
 * ```
 */
export function routePrefix(prefix: unknown): string {
  if (prefix === undefined) return '';
  const bad = (why: string) =>
    new KeywardError('config_invalid', `"prefix" ${why}, e.g. "/api" (got ${JSON.stringify(prefix)})`);
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw bad('must be a path starting with "/"');
  if (prefix.length > 256) throw bad('must be at most 256 characters');
  if (prefix.endsWith('/')) throw bad('must not end with "/"');
  for (const segment of prefix.slice(1).split('/')) {
    if (segment === '.' || segment === '..') throw bad('must not contain "." or ".." segments');
    if (!PREFIX_SEGMENT.test(segment))
      throw bad(
        'must be plain path segments (letters, digits, ".", "_", "~", "-"), no parameters or wildcards',
      );
  }
  return prefix;
}

const JSON_HEADERS = { 'cache-control': 'no-store' };
const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = JSON_HEADERS,
): HttpResponse => ({
  status,
  headers,
  body,
});
const noContent = (): HttpResponse => ({ status: 204, headers: JSON_HEADERS });

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw invalidRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/**
 * The JSON object body of a route that needs one. A request without a body is a 400, never read as
 * `{}`: a bodyless cross-site POST (a form or `fetch` with no body) must not run a route on defaults.
 */
function requiredBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || body === '')
    throw invalidRequest('the request needs a JSON object body');
  return objectBody(body);
}

function stringField(
  body: Record<string, unknown>,
  name: string,
  options: { max?: number; optional?: boolean } = {},
) {
  const value = body[name];
  if (value === undefined && options.optional) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw invalidRequest(`"${name}" must be a non-empty string`);
  if (value.length > (options.max ?? 1024))
    throw invalidRequest(`"${name}" is longer than ${options.max ?? 1024} characters`);
  return value;
}

/** One query parameter as a string; a repeated or over-long one is a 400. */
function queryField(req: HttpRequest, name: string): string | undefined {
  const value = req.query?.[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw invalidRequest(`query parameter "${name}" must be given once`);
  if (value.length > 64) throw invalidRequest(`query parameter "${name}" is longer than 64 characters`);
  return value;
}

/** A whole number from the query in `[min, max]`, or `fallback` when absent. */
function queryInteger(req: HttpRequest, name: string, min: number, max: number, fallback: number): number {
  const text = queryField(req, name);
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw invalidRequest(`query parameter "${name}" must be a whole number from ${min} to ${max}`);
  return value;
}

/** The most days `GET /admin/keys/plan` simulates (as `keyward keys plan --days`). */
const MAX_PLAN_DAYS = 3650;

/** `horizon` of `GET /admin/keys/plan`: days as `120d` or `120`, default 120. */
function planHorizonDays(req: HttpRequest): number {
  const text = queryField(req, 'horizon');
  if (text === undefined) return 120;
  const match = /^(\d{1,4})d?$/.exec(text);
  const days = match ? Number(match[1]) : Number.NaN;
  if (!(days >= 0 && days <= MAX_PLAN_DAYS))
    throw invalidRequest(`"horizon" must be a number of days from 0 to ${MAX_PLAN_DAYS}, e.g. 120d`);
  return days;
}

const isoTime = (t: number) => new Date(t).toISOString();

/** A planned action with its times as ISO strings, as the admin API writes times. */
function publicAction(action: RotationAction) {
  switch (action.type) {
    case 'generate':
      return { ...action, activateAt: isoTime(action.activateAt) };
    case 'activate':
      return {
        ...action,
        demote: action.demote ?? null,
        verifyUntil: action.verifyUntil === undefined ? null : isoTime(action.verifyUntil),
      };
    default:
      return action;
  }
}

const SECRET_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const USES: readonly KeyUse[] = ['sig', 'enc', 'data'];

function publicRecord(r: KeyRecord) {
  const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
  return {
    kid: r.kid,
    use: r.use,
    alg: r.alg,
    state: r.state,
    origin: r.origin,
    createdAt: iso(r.createdAt),
    activatedAt: iso(r.activatedAt),
    verifyUntil: iso(r.verifyUntil),
    revokedAt: iso(r.revokedAt),
    // A revoked data key whose material the rewrap destroyed.
    destroyedAt: iso(r.destroyedAt),
  };
}

/**
 * The routes of the HTTP contract, framework-neutral. Adapters mount each route in their own
 * idiom and call {@link handleRoute}; they never re-implement a handler.
 *
 * @example
 * ```ts
 * for (const route of keywardRoutes(kw, { users })) {
 *   app[route.method.toLowerCase()](route.path, async (req, res) => send(res, await handleRoute(route, auth, toRequest(req))))
 * }
 * ```
 */
export function keywardRoutes(kw: RouteDeps, options: KeywardRoutesOptions = {}): KeywardRoute[] {
  const include = new Set<string>(options.include ?? ROUTE_GROUPS);
  const sets = options.routeSets ?? [];
  for (const set of sets) {
    if ((ROUTE_GROUPS as readonly string[]).includes(set.group))
      throw new KeywardError(
        'config_invalid',
        `route set "${set.group}" reuses the name of a core route group`,
      );
  }
  const prefix = routePrefix(options.prefix);
  const wellKnown = options.wellKnown ?? 'root';
  if (wellKnown !== 'root' && wellKnown !== 'prefixed')
    throw new KeywardError('config_invalid', '"wellKnown" must be "root" or "prefixed"');
  // Where a route of the table is served: under the prefix, but `/.well-known/*` at the root by default.
  const servedAt = (path: string) =>
    wellKnown === 'root' && path.startsWith('/.well-known/') ? path : `${prefix}${path}`;
  const known = new Set<string>([...ROUTE_GROUPS, ...sets.map((set) => set.group)]);
  const unknown = [...include].filter((group) => !known.has(group));
  if (unknown.length > 0)
    throw new KeywardError(
      'config_invalid',
      `"include" names unknown route groups: ${unknown.join(', ')} (known: ${[...known].join(', ')})`,
    );
  const admin = { scopes: ['admin'] } as const;
  const routes: Array<KeywardRoute & { group: string }> = [];
  const add = (group: string, route: KeywardRoute) => {
    if (include.has(group as never)) routes.push({ ...route, path: servedAt(route.path), group });
  };
  // The JWKS body and its ETag change only with the keyring snapshot: build them once per snapshot.
  let jwksCache: { snapshot: unknown; body: string; etag: string } | undefined;
  const jwksDocument = () => {
    const snapshot = kw.keys.snapshot();
    if (jwksCache?.snapshot !== snapshot) {
      const body = JSON.stringify(kw.keys.jwks());
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      jwksCache = { snapshot, body, etag };
    }
    return jwksCache;
  };
  const jwksMaxAgeSec = Math.floor(Math.min(kw.policy.jwksMaxAge, kw.policy.publishLead) / 1000);
  const users = options.users;
  // The brute-force limiter: counts the attempt, refuses it with 429 past a limit, and gives it
  // back unless it failed on the credential (`failed`), so only wrong passwords or tokens count.
  const limited = async <T>(
    route: RateLimitedRoute,
    subject: RateLimitSubject,
    failed: (err: unknown) => boolean,
    work: () => Promise<T>,
  ): Promise<T> => {
    const decision = await kw.rateLimit?.attempt(route, subject);
    if (decision !== undefined && !decision.allowed) {
      throw new KeywardError(
        'too_many_requests',
        `too many failed attempts; try again in ${decision.retryAfterSec} s`,
        { details: { retryAfterSec: decision.retryAfterSec, limit: decision.limit } },
      );
    }
    try {
      const result = await work();
      await decision?.succeeded();
      return result;
    } catch (err) {
      if (!failed(err)) await decision?.succeeded();
      throw err;
    }
  };

  if (users) {
    add('auth', {
      name: 'login',
      method: 'POST',
      path: '/auth/login',
      auth: 'none',
      sessionCookie: 'set',
      async handle(req) {
        const body = requiredBody(req.body);
        const username = stringField(body, 'username', { max: 256 }) as string;
        const password = stringField(body, 'password', { max: 1024 }) as string;
        const user = await limited(
          'login',
          { username, address: req.remoteAddress },
          (err) => isKeywardError(err, 'invalid_credentials'),
          async () => {
            const found = await users.verify(username, password);
            if (!found) throw new KeywardError('invalid_credentials', 'wrong username or password');
            return found;
          },
        );
        // The user's roles and custom claims ride in the tokens (and survive refresh).
        return json(200, await issueForUser(kw.tokens, user), {
          'cache-control': 'no-store',
          pragma: 'no-cache',
        });
      },
    });
  }
  add('auth', {
    name: 'refresh',
    method: 'POST',
    path: '/auth/refresh',
    auth: 'none',
    sessionCookie: 'set',
    async handle(req) {
      const refreshToken = stringField(requiredBody(req.body), 'refresh_token', { max: 512 }) as string;
      const pair = await limited(
        'refresh',
        { address: req.remoteAddress },
        (err) => isKeywardError(err, 'refresh_token_invalid', 'refresh_token_reused'),
        () => kw.tokens.refresh(refreshToken),
      );
      return json(200, pair, {
        'cache-control': 'no-store',
        pragma: 'no-cache',
      });
    },
  });
  add('auth', {
    name: 'logout',
    method: 'POST',
    path: '/auth/logout',
    auth: 'required',
    sessionCookie: 'clear',
    async handle(req, principal) {
      const refreshToken = stringField(objectBody(req.body), 'refresh_token', { max: 512, optional: true });
      const p = principal as Principal;
      await kw.tokens.logout({
        ...(p.via === 'jwt' ? { access: { jti: p.jti, exp: p.claims.exp, sub: p.sub } } : {}),
        ...(refreshToken ? { refreshToken } : {}),
      });
      return noContent();
    },
  });
  add('me', {
    name: 'me',
    method: 'GET',
    path: '/me',
    auth: 'required',
    async handle(_req, principal) {
      const p = principal as Principal;
      return json(200, { sub: p.sub, scopes: p.scopes, auth: p.via });
    },
  });
  add('admin', {
    name: 'listKeys',
    method: 'GET',
    path: '/admin/keys',
    auth: admin,
    handle: async () => json(200, kw.keys.list().map(publicRecord)),
  });
  add('admin', {
    name: 'planKeys',
    method: 'GET',
    path: '/admin/keys/plan',
    auth: admin,
    async handle(req) {
      const days = planHorizonDays(req);
      const from = (kw.now ?? Date.now)();
      // The scheduler's own decision function, played forward as `keyward keys plan` does.
      const steps = simulateRotation(kw.keys.list(), kw.policy, from, days);
      return json(200, {
        from: isoTime(from),
        horizonDays: days,
        steps: steps.map(({ at, actions, jwksKids }) => ({
          at: isoTime(at),
          actions: actions.map(publicAction),
          jwksKids,
        })),
      });
    },
  });
  if (kw.audit) {
    const audit = kw.audit;
    add('admin', {
      name: 'listAudit',
      method: 'GET',
      path: '/admin/audit',
      auth: admin,
      async handle(req) {
        const type = queryField(req, 'type');
        if (type !== undefined && !AUDIT_EVENT_TYPES.includes(type as AuditEventType))
          throw invalidRequest(`"type" must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
        const limit = queryInteger(req, 'limit', 1, 1000, 100);
        const events = audit.recent({ ...(type ? { type: type as AuditEventType } : {}), limit });
        return json(200, { events, chain: await audit.verify() });
      },
    });
  }
  if (kw.instances) {
    const instances = kw.instances;
    add('admin', {
      name: 'listInstances',
      method: 'GET',
      path: '/admin/instances',
      auth: admin,
      async handle() {
        const report = await instances.list();
        return json(200, {
          generation: report.generation,
          self: instances.id ?? null,
          counts: report.counts,
          instances: report.instances.map((i) => ({
            ...i,
            startedAt: isoTime(i.startedAt),
            lastSeenAt: isoTime(i.lastSeenAt),
          })),
        });
      },
    });
  }
  add('admin', {
    name: 'rotateKey',
    method: 'POST',
    path: '/admin/keys/rotate',
    auth: admin,
    async handle(req, principal) {
      const body = requiredBody(req.body);
      const use = body.use ?? 'sig';
      if (!USES.includes(use as KeyUse)) throw invalidRequest('"use" must be one of sig, enc, data');
      const { kid, unpublished } = await kw.keys.rotate({
        use: use as KeyUse,
        reason: `on demand by ${principal?.sub ?? 'unknown'}`,
      });
      return json(200, { kid, unpublished });
    },
  });
  add('admin', {
    name: 'revokeKey',
    method: 'POST',
    path: '/admin/keys/:kid/revoke',
    auth: admin,
    async handle(req) {
      const reason = stringField(requiredBody(req.body), 'reason', { max: 512 }) as string;
      const kid = req.params.kid ?? '';
      const { revoked, replacement, toRewrap, unpublished } = await kw.keys.revoke(kid, reason);
      // A data key: its records stay readable while a background rewrap moves them (`toRewrap`).
      return json(200, {
        revoked,
        replacement: replacement ?? null,
        unpublished,
        ...(toRewrap !== undefined ? { toRewrap } : {}),
      });
    },
  });
  add('apiKeys', {
    name: 'createApiKey',
    method: 'POST',
    path: '/api-keys',
    auth: 'required',
    async handle(req, principal) {
      const p = principal as Principal;
      if (p.via !== 'jwt')
        throw new KeywardError('insufficient_scope', 'API keys cannot create API keys', {
          details: { scope: '' },
        });
      const body = requiredBody(req.body);
      const name = stringField(body, 'name', { max: 128 }) as string;
      const scopes = body.scopes ?? p.scopes;
      if (
        !Array.isArray(scopes) ||
        !scopes.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 64)
      ) {
        throw invalidRequest('"scopes" must be an array of scope names');
      }
      const beyond = scopes.filter((s) => !p.scopes.includes(s));
      if (beyond.length > 0)
        throw new KeywardError('insufficient_scope', 'an API key cannot have scopes its creator lacks', {
          details: { scope: beyond.join(' ') },
        });
      const expiresIn = body.expiresIn;
      if (
        expiresIn !== undefined &&
        (typeof expiresIn !== 'number' ||
          !Number.isInteger(expiresIn) ||
          expiresIn <= 0 ||
          expiresIn > 10 * 365 * 86400)
      ) {
        throw invalidRequest('"expiresIn" must be a positive whole number of seconds');
      }
      const created = await kw.apiKeys.create({
        owner: ownerOf(p),
        name,
        scopes,
        ...(expiresIn !== undefined ? { expiresInSec: expiresIn } : {}),
      });
      return json(201, {
        id: created.id,
        key: created.key,
        prefix: created.prefix,
        name: created.name,
        scopes: created.scopes,
        expiresAt: created.expiresAt === null ? null : new Date(created.expiresAt).toISOString(),
      });
    },
  });
  add('apiKeys', {
    name: 'listApiKeys',
    method: 'GET',
    path: '/api-keys',
    auth: 'required',
    async handle(_req, principal) {
      const list = await kw.apiKeys.list(ownerOf(principal as Principal));
      return json(
        200,
        list.map((k) => ({
          id: k.id,
          prefix: k.prefix,
          name: k.name,
          scopes: k.scopes,
          createdAt: new Date(k.createdAt).toISOString(),
          expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
          lastUsedAt: k.lastUsedAt === null ? null : new Date(k.lastUsedAt).toISOString(),
          revoked: k.revokedAt !== null,
        })),
      );
    },
  });
  add('apiKeys', {
    name: 'deleteApiKey',
    method: 'DELETE',
    path: '/api-keys/:id',
    auth: 'required',
    async handle(req, principal) {
      const ok = await kw.apiKeys.revoke(req.params.id ?? '', { owner: ownerOf(principal as Principal) });
      if (!ok) throw new KeywardError('not_found', 'no such API key');
      return noContent();
    },
  });
  const secretName = (req: HttpRequest) => {
    const name = req.params.name ?? '';
    if (!SECRET_NAME.test(name))
      throw invalidRequest('secret names are 1-128 letters, digits, ".", "_" or "-"');
    return name;
  };
  add('secrets', {
    name: 'putSecret',
    method: 'PUT',
    path: '/secrets/:name',
    auth: 'required',
    async handle(req, principal) {
      const name = secretName(req);
      const value = requiredBody(req.body).value;
      if (typeof value !== 'string' || value.length > 65_536)
        throw invalidRequest('"value" must be a string of at most 64 KiB');
      await kw.secrets.put(ownerOf(principal as Principal), name, value);
      return noContent();
    },
  });
  add('secrets', {
    name: 'getSecret',
    method: 'GET',
    path: '/secrets/:name',
    auth: 'required',
    async handle(req, principal) {
      const name = secretName(req);
      const value = await kw.secrets.get(ownerOf(principal as Principal), name);
      if (value === undefined) throw new KeywardError('not_found', 'no such secret');
      return json(200, { name, value });
    },
  });
  add('jwks', {
    name: 'jwks',
    method: 'GET',
    path: '/.well-known/jwks.json',
    auth: 'none',
    async handle(req) {
      const { body, etag } = jwksDocument();
      const headers = {
        'cache-control': `${options.jwksSharedCache ? 'public' : 'private'}, max-age=${jwksMaxAgeSec}`,
        etag,
        'content-type': 'application/json',
      };
      const inm = req.headers['if-none-match'];
      if (
        typeof inm === 'string' &&
        inm.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)
      ) {
        return { status: 304, headers };
      }
      return { status: 200, headers, body };
    },
  });
  // OAuth 2.0 token introspection (RFC 7662) and revocation (RFC 7009): form-encoded bodies only.
  const oauthHeaders = { 'cache-control': 'no-store', pragma: 'no-cache' };
  const oauthToken = (req: HttpRequest) => {
    const fields = formFields(req.headers, req.body);
    // An unknown or wrong hint is ignored (RFC 7662 §2.1, RFC 7009 §2.1): the token's shape decides.
    formField(fields, 'token_type_hint', { max: 64, optional: true });
    return formField(fields, 'token', { max: MAX_OAUTH_TOKEN_LENGTH }) as string;
  };
  add('oauth', {
    name: 'introspectToken',
    method: 'POST',
    path: '/oauth/introspect',
    auth: { anyScope: ['introspect', 'admin'] },
    body: 'form',
    async handle(req) {
      const token = oauthToken(req);
      const issuer = kw.issuer?.() ?? kw.options?.issuer;
      const clientId = kw.options?.clientId;
      return json(
        200,
        await introspect(
          {
            jwt: kw.jwt,
            tokens: kw.tokens,
            apiKeys: kw.apiKeys,
            ...(issuer ? { issuer } : {}),
            ...(clientId ? { clientId } : {}),
          },
          token,
        ),
        oauthHeaders,
      );
    },
  });
  add('oauth', {
    name: 'revokeToken',
    method: 'POST',
    path: '/oauth/revoke',
    auth: 'required',
    body: 'form',
    async handle(req, principal) {
      const token = oauthToken(req);
      const p = principal as Principal;
      // RFC 7009 §2.1: a token that was not issued to the caller is refused (403); the owner and
      // `admin` may revoke it. An unknown, expired or already revoked token is a 200 (§2.2).
      const mayRevoke = (owner: string) => {
        if (owner !== ownerOf(p) && !p.scopes.includes('admin')) {
          throw new KeywardError('insufficient_scope', "only the token's owner or an admin can revoke it", {
            details: { scope: 'admin' },
          });
        }
      };
      const done = () => ({ status: 200, headers: oauthHeaders });
      switch (tokenKind(token)) {
        case 'refresh_token': {
          const info = await kw.tokens.inspectRefresh(token);
          if (!info) return done();
          mayRevoke(info.sub);
          await kw.tokens.logout({ refreshToken: token });
          return done();
        }
        case 'access_token': {
          let claims: ReturnType<RouteDeps['jwt']['verify']>['payload'];
          try {
            claims = kw.jwt.verify(token).payload;
          } catch (err) {
            if (isInactiveCredential(err)) return done();
            throw err;
          }
          const sub = typeof claims.sub === 'string' ? claims.sub : '';
          mayRevoke(sub);
          if (claims.jti !== undefined) {
            await kw.tokens.logout({ access: { jti: claims.jti, exp: claims.exp, ...(sub ? { sub } : {}) } });
          }
          return done();
        }
        case 'api_key': {
          let key: Awaited<ReturnType<ApiKeyService['verify']>>;
          try {
            key = await kw.apiKeys.verify(token);
          } catch (err) {
            if (isInactiveCredential(err)) return done();
            throw err;
          }
          mayRevoke(key.owner);
          await kw.apiKeys.revoke(key.id);
          return done();
        }
        default:
          return done();
      }
    },
  });
  // Discovery (RFC 8414; the subset of OpenID Connect Discovery that applies): where the JWKS is,
  // the issuer to pin, the algorithms to allow. Endpoints are the contract's paths under the issuer.
  const discovery = (openid: boolean): HttpResponse => {
    const issuer = kw.issuer?.();
    if (!issuer)
      throw new KeywardError('not_found', 'no issuer is configured: set KEYWARD_ISSUER (the issuer option)');
    const algs = [
      ...new Set(
        kw.keys
          .list()
          // Only what a verifier can check with the JWKS: advertising an HMAC algorithm would invite
          // downstream allow-lists open to algorithm confusion.
          .filter(
            (r) =>
              r.use === 'sig' && !isSymmetric(r.alg) && ['pending', 'active', 'retiring'].includes(r.state),
          )
          .map((r) => r.alg),
      ),
    ];
    const body: Record<string, unknown> = {
      issuer,
      jwks_uri: `${issuer}${servedAt('/.well-known/jwks.json')}`,
      token_endpoint: `${issuer}${servedAt('/auth/refresh')}`,
      revocation_endpoint: `${issuer}${servedAt('/oauth/revoke')}`,
      introspection_endpoint: `${issuer}${servedAt('/oauth/introspect')}`,
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      // keyward issues no ID tokens; OpenID Connect Discovery requires the member, so it lists
      // the algorithms of the published signing keys (those that sign the access tokens).
      ...(openid ? { id_token_signing_alg_values_supported: algs, subject_types_supported: ['public'] } : {}),
    };
    return json(200, body, { 'cache-control': `max-age=${jwksMaxAgeSec}` });
  };
  add('discovery', {
    name: 'oauthMetadata',
    method: 'GET',
    path: '/.well-known/oauth-authorization-server',
    auth: 'none',
    handle: async () => discovery(false),
  });
  add('discovery', {
    name: 'openidConfiguration',
    method: 'GET',
    path: '/.well-known/openid-configuration',
    auth: 'none',
    handle: async () => discovery(true),
  });
  const healthHeaders = { 'content-type': 'application/health+json', 'cache-control': 'no-store' };
  add('health', {
    name: 'live',
    method: 'GET',
    path: '/health/live',
    auth: 'none',
    handle: async () => ({ status: 200, headers: healthHeaders, body: JSON.stringify({ status: 'pass' }) }),
  });
  add('health', {
    name: 'ready',
    method: 'GET',
    path: '/health/ready',
    auth: 'none',
    async handle() {
      if (options.isShuttingDown?.()) {
        const report = { status: 'fail', checks: {}, output: 'shutting down' };
        return { status: 503, headers: healthHeaders, body: JSON.stringify(report) };
      }
      const report = await kw.health({ ready: true });
      return {
        status: report.status === 'fail' ? 503 : 200,
        headers: healthHeaders,
        body: JSON.stringify(report),
      };
    },
  });
  add('metrics', {
    name: 'metrics',
    method: 'GET',
    path: '/metrics',
    auth: 'none',
    async handle() {
      return {
        status: 200,
        headers: { 'content-type': kw.metrics.contentType },
        body: await kw.metrics.text(),
      };
    },
  });
  for (const set of sets) {
    if (include.has(set.group)) for (const route of set.routes(kw, options)) add(set.group, route);
  }
  return routes.map(({ group: _group, ...route }) => route);
}

/** Core's route groups, in the order {@link keywardRoutes} serves them. */
export const ROUTE_GROUPS: readonly RouteGroup[] = [
  'auth',
  'me',
  'admin',
  'apiKeys',
  'secrets',
  'jwks',
  'discovery',
  'health',
  'metrics',
  'oauth',
];

/**
 * The route-table options out of an adapter's options object, so an option added to
 * {@link KeywardRoutesOptions} reaches every adapter with no adapter change.
 */
export function routeTableOptions(options: KeywardRoutesOptions): KeywardRoutesOptions {
  const picked: KeywardRoutesOptions = {};
  for (const name of ROUTE_TABLE_OPTIONS) {
    if (options[name] !== undefined) (picked as Record<string, unknown>)[name] = options[name];
  }
  return picked;
}

const ROUTE_TABLE_OPTIONS = [
  'users',
  'include',
  'routeSets',
  'jwksSharedCache',
  'isShuttingDown',
  'prefix',
  'wellKnown',
] as const satisfies ReadonlyArray<keyof KeywardRoutesOptions>;
// Fails to compile when an option of KeywardRoutesOptions is missing from the list above.
const everyRouteTableOption: [
  Exclude<keyof KeywardRoutesOptions, (typeof ROUTE_TABLE_OPTIONS)[number]>,
] extends [never]
  ? true
  : never = true;
void everyRouteTableOption;

/**
 * Runs one route: authenticates, checks scopes, calls the handler, and maps any error to the
 * contract's answer (its body shaped by `problemBody`, default `{error, message}`). Never throws;
 * never answers 5xx for bad input.
 */
export async function handleRoute(
  route: KeywardRoute,
  auth: Authenticator,
  request: HttpRequest,
  onDenied?: DeniedHook,
  problemBody?: ProblemBody,
): Promise<HttpResponse> {
  try {
    const badParams = invalidParams(request.params);
    if (badParams) throw badParams;
    if ((route.method === 'POST' || route.method === 'PUT') && carriesBody(request.headers)) {
      // Identity bodies only, in every adapter: Fastify and Hono read a compressed body's bytes as
      // they are, so accepting a coding where body-parser decodes it would split the contract.
      const encoding = request.headers['content-encoding'];
      if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') {
        throw invalidBody('undecodable', route.body ?? 'json');
      }
      // JSON routes take JSON only, whatever the platform parsed (NestJS parses forms app-wide).
      if (route.body !== 'form' && !isBodyType(request.headers['content-type'], 'json'))
        throw invalidBody('unsupported_type');
    }
    let principal: Principal | undefined;
    if (route.auth !== 'none') {
      principal = await auth.authenticate(request.headers, route.method, request.native);
      if (typeof route.auth === 'object') {
        if ('anyScope' in route.auth) {
          const wanted = route.auth.anyScope;
          const held = principal.scopes;
          if (!wanted.some((s) => held.includes(s)))
            auth.authorize(principal, { scopes: wanted.slice(0, 1) });
        } else auth.authorize(principal, route.auth);
      }
    }
    const answer = await route.handle(request, principal);
    return auth.cookie && route.sessionCookie
      ? withSessionCookie(answer, route.sessionCookie, auth.cookie)
      : answer;
  } catch (err) {
    // The authenticator's realm (its `realm` option) for every challenge of the route.
    if (auth.realm !== undefined) markRealm(err, auth.realm);
    return problemResponse(err, onDenied, problemBody);
  }
}

function withSessionCookie(answer: HttpResponse, action: 'set' | 'clear', name: string): HttpResponse {
  if (answer.status >= 300) return answer;
  if (action === 'clear')
    return { ...answer, headers: { ...answer.headers, 'set-cookie': clearSessionCookie(name) } };
  const body = answer.body as { access_token?: unknown; expires_in?: unknown } | undefined;
  if (typeof body?.access_token !== 'string' || typeof body.expires_in !== 'number') return answer;
  return {
    ...answer,
    headers: { ...answer.headers, 'set-cookie': setSessionCookie(name, body.access_token, body.expires_in) },
  };
}

/** A request with a body: a non-zero `Content-Length` or a `Transfer-Encoding` (RFC 9112 §6.3). */
function carriesBody(headers: HeaderBag): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The body of an error answer, from its problem: by default the contract's `{error, message}`
 * (`error` the stable code). An adapter passes another to answer in its framework's shape (NestJS's
 * `{statusCode, error, message}`); status and headers never change with it.
 */
export type ProblemBody = (problem: HttpProblem) => unknown;

/** The contract's `{error, message}` body of a problem. */
export const contractProblemBody: ProblemBody = (problem) => ({
  error: problem.error,
  message: problem.message,
});

/** The contract's error response for any error (its body shaped by `problemBody`, if given). */
export function problemResponse(
  err: unknown,
  onDenied?: DeniedHook,
  problemBody: ProblemBody = contractProblemBody,
): HttpResponse {
  const problem = reportProblem(err, onDenied);
  return {
    status: problem.status,
    headers: { ...problem.headers, 'cache-control': 'no-store' },
    body: problemBody(problem),
  };
}
