import { createKeyward, type Keyward, KeywardError, type KeywardServiceOptions } from '@keyward/core';
import type { Authenticator, AuthenticatorOptions, DeniedHook, Principal } from '@keyward/core/http';
import { createAuthenticator, withRequestHooks } from '@keyward/core/http';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { toFastifyError } from './errors.js';

type Done = (err?: Error) => void;
type Check = (principal: Principal) => void;

/** Per-route settings, read when the route is registered: `config: { keyward: … }`. */
export type KeywardRouteConfig =
  /** No authentication, even when the plugin is registered with `global: true`. */
  | { public: true }
  /**
   * Optional authentication (also under `global: true`): `request.auth` is the principal when a
   * valid credential is sent, `null` without one; a bad credential is still refused.
   */
  | { optional: true }
  /** Authentication with every one of these scopes (`[]`: any valid credential). */
  | { scopes: readonly string[] };

/**
 * An `onRequest` (or `preHandler`) hook that authenticates the request and sets `request.auth`.
 * Fastify calls it with `done`, and keyward's own tokens finish synchronously, no promise made;
 * called without `done` (`await fastify.authenticate(request, reply)`), it returns a promise.
 */
export type KeywardHook = {
  (request: FastifyRequest, reply: FastifyReply, done: Done): void;
  (request: FastifyRequest, reply: FastifyReply): Promise<void>;
};

declare module 'fastify' {
  interface FastifyInstance {
    /** The keyward instance: tokens, keys, API keys, secrets, health. */
    keyward: Keyward;
    /** `onRequest` hook: requires a valid bearer token or API key; sets `request.auth`. */
    authenticate: KeywardHook;
    /** An `onRequest` hook requiring every scope (authenticating first if needed); else 403. */
    requireScopes(...scopes: string[]): KeywardHook;
    /** An `onRequest` hook requiring at least one of the roles (authenticating first if needed); else 403. */
    requireRoles(...roles: string[]): KeywardHook;
    /**
     * `onRequest` hook: sets `request.auth` when a valid credential is sent, leaves it `null`
     * without one (an `Authorization` header of another scheme counts as none); a bad credential
     * is still refused.
     */
    optionalAuth: KeywardHook;
  }
  interface FastifyRequest {
    /** Who made the request; `null` until a keyward hook authenticated it. */
    auth: Principal | null;
  }
  interface FastifyContextConfig {
    /** keyward's per-route settings: `{ public: true }`, `{ optional: true }` or `{ scopes: [...] }`. */
    keyward?: KeywardRouteConfig;
  }
}

/**
 * The decorators of the plugin registered with `namespace` (`'kw'` ⇒ `kwAuthenticate`,
 * `kwRequireScopes`, `kwRequireRoles`, `kwOptionalAuth`), for declaration merging.
 *
 * @example
 * ```ts
 * declare module 'fastify' {
 *   interface FastifyInstance extends KeywardNamespacedDecorators<'kw'> {}
 * }
 * ```
 */
export type KeywardNamespacedDecorators<Namespace extends string> = {
  [K in `${Namespace}Authenticate` | `${Namespace}OptionalAuth`]: KeywardHook;
} & {
  [K in `${Namespace}RequireScopes` | `${Namespace}RequireRoles`]: (...names: string[]) => KeywardHook;
};

/** Options of the {@link keyward} plugin: give `keyward` (an instance) or `create` (options for one). */
export interface KeywardPluginOptions extends Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'> {
  /** An instance from `createKeyward()`. You close it: the plugin does not. */
  keyward?: Keyward;
  /** Options for `createKeyward()`: the plugin creates the instance and closes it in `onClose`. */
  create?: KeywardServiceOptions;
  /** Authenticate every route registered after the plugin, except those with `config.keyward.public`. Default false. */
  global?: boolean;
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
  /**
   * Prefix of the hook decorators, to live beside another auth plugin (the `@fastify/jwt` recipe
   * decorates `authenticate`): `'kw'` ⇒ `fastify.kwAuthenticate`, `kwRequireScopes`,
   * `kwRequireRoles`, `kwOptionalAuth`. Default none: `authenticate`, `requireScopes`,
   * `requireRoles`, `optionalAuth`. A name already decorated is refused at registration. Type the
   * prefixed names with {@link KeywardNamespacedDecorators}.
   */
  namespace?: string;
  /**
   * The request property of the principal (`@fastify/jwt`'s `decoratorName`). Default `auth`
   * (typed by keyward); for another name, declare it on `FastifyRequest` yourself.
   */
  decoratorName?: string;
  /**
   * A custom token extractor, called with the Fastify request: the token, or `undefined` / `null`
   * for none. It replaces reading `Authorization: Bearer`; a returned token is verified like a
   * bearer token, also on the routes of `keywardRoutes`. May be async.
   *
   * @example
   * ```ts
   * getToken: (request) => request.headers['x-access-token'] as string | undefined
   * ```
   */
  getToken?: (request: FastifyRequest) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Called with every verified principal and the Fastify request: return the principal to use
   * (changed or not: `@fastify/jwt`'s `formatUser`), or throw a `KeywardError` to refuse
   * (`trusted` / a disabled user). Anything else thrown is a 500. May be async.
   */
  onAuthenticated?: (principal: Principal, request: FastifyRequest) => Principal | Promise<Principal>;
}

/** Internals shared with `keywardRoutes`, under a symbol so they are not part of the public shape. */
export const kInternals = Symbol('keyward.internals');
export interface KeywardInternals {
  authenticator: Authenticator;
  onDenied: DeniedHook | undefined;
}

const invalid = (message: string) => new KeywardError('config_invalid', `@keyward/fastify: ${message}`);
const isFunction = (value: unknown): value is (...args: never[]) => unknown => typeof value === 'function';

function validate(options: KeywardPluginOptions): void {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const { keyward: kw, create } = options;
  if ((kw === undefined) === (create === undefined)) {
    throw invalid(
      'pass exactly one of "keyward" (an instance from createKeyward) and "create" (options for one)',
    );
  }
  if (kw !== undefined && !isFunction((kw as Partial<Keyward> | null)?.jwt?.verify)) {
    throw invalid('"keyward" must be an instance from createKeyward()');
  }
  if (create !== undefined && (typeof create !== 'object' || create === null)) {
    throw invalid('"create" must be an options object for createKeyward()');
  }
  if (options.global !== undefined && typeof options.global !== 'boolean') {
    throw invalid('"global" must be true or false');
  }
  if (options.apiKeys !== undefined && typeof options.apiKeys !== 'boolean') {
    throw invalid('"apiKeys" must be true or false');
  }
  const header = options.apiKeyHeader;
  if (
    header !== undefined &&
    header !== false &&
    !(typeof header === 'string' && /^[a-z0-9-]+$/.test(header))
  ) {
    throw invalid('"apiKeyHeader" must be a lower-case header name or false');
  }
  if (options.cookie !== undefined && (typeof options.cookie !== 'string' || options.cookie === '')) {
    throw invalid('"cookie" must be a non-empty cookie name');
  }
  if (options.onDenied !== undefined && !isFunction(options.onDenied))
    throw invalid('"onDenied" must be a function');
  for (const name of ['namespace', 'decoratorName'] as const) {
    const value = options[name];
    if (value !== undefined && !(typeof value === 'string' && /^[A-Za-z_$][\w$]*$/.test(value)))
      throw invalid(`"${name}" must be an identifier (letters, digits, _ or $)`);
  }
}

function routeConfigOf(value: unknown, url: string): KeywardRouteConfig | undefined {
  if (value === undefined) return undefined;
  const config = value as { public?: unknown; scopes?: unknown; optional?: unknown } | null;
  const scopes = config?.scopes;
  const validScopes = Array.isArray(scopes) && scopes.every((s) => typeof s === 'string' && s !== '');
  const keys = config !== null && typeof config === 'object' ? Object.keys(config) : [];
  if (config?.public === true && keys.length === 1) return { public: true };
  if (config?.optional === true && keys.length === 1) return { optional: true };
  if (validScopes && keys.length === 1) return { scopes };
  throw invalid(
    `route ${url}: config.keyward must be { public: true }, { optional: true } or { scopes: [...scope names] }`,
  );
}

const plugin: FastifyPluginAsync<KeywardPluginOptions> = async (fastify, options) => {
  validate(options);
  const {
    keyward: given,
    create,
    global = false,
    onDenied,
    namespace,
    decoratorName = 'auth',
    getToken,
    onAuthenticated,
    ...authOptions
  } = options;
  // The names this plugin decorates: refused before anything is created if another plugin has them.
  const name = (base: string) =>
    namespace === undefined ? base : `${namespace}${base[0]?.toUpperCase()}${base.slice(1)}`;
  const names = {
    authenticate: name('authenticate'),
    requireScopes: name('requireScopes'),
    requireRoles: name('requireRoles'),
    optionalAuth: name('optionalAuth'),
  };
  for (const decorator of Object.values(names)) {
    if (fastify.hasDecorator(decorator)) {
      throw invalid(
        `"${decorator}" is already decorated (by another plugin, e.g. the @fastify/jwt recipe's "authenticate"): register keyward with a "namespace" option (namespace: 'kw' decorates "kwAuthenticate"…)`,
      );
    }
  }
  if (fastify.hasRequestDecorator(decoratorName)) {
    throw invalid(
      `request.${decoratorName} is already decorated (by another plugin, e.g. @fastify/jwt's "user"): choose another "decoratorName"`,
    );
  }
  const kw = given ?? (await createKeyward(create));
  // Close only what we created: a given instance belongs to the caller.
  if (!given) fastify.addHook('onClose', () => kw.close());
  const authenticator = createAuthenticator(
    kw,
    withRequestHooks<FastifyRequest>({ ...authOptions, getToken, onAuthenticated }),
  );
  const slot = (request: FastifyRequest) => request as unknown as Record<string, Principal | null>;

  /** Keeps the principal on the request and runs the route's check (which may throw). */
  function accept(request: FastifyRequest, principal: Principal | undefined, check?: Check): void {
    if (principal === undefined) return;
    slot(request)[decoratorName] = principal;
    check?.(principal);
  }
  const refuse = (err: unknown): never => {
    throw toFastifyError(err, onDenied);
  };
  /**
   * A hook that settles synchronously for keyward's own tokens (Fastify's `done`, no promise) and
   * through a promise otherwise; a principal an earlier keyward hook set is not verified again.
   * `done` is called outside the `try`, so an error of what runs after the hook is never taken
   * for a refusal.
   */
  const hook = (required: boolean, check?: Check): KeywardHook =>
    function keyward(request: FastifyRequest, _reply: FastifyReply, done?: Done) {
      let outcome: Principal | undefined | Promise<Principal | undefined>;
      try {
        outcome =
          slot(request)[decoratorName] ??
          authenticator.identify(request.headers, request.method, request, required);
        if (!(outcome instanceof Promise)) accept(request, outcome, check);
      } catch (err) {
        const refusal = toFastifyError(err, onDenied) as Error;
        return done ? done(refusal) : Promise.reject(refusal);
      }
      if (!(outcome instanceof Promise)) return done ? done() : Promise.resolve();
      const settled = outcome.then((principal) => accept(request, principal, check)).catch(refuse);
      if (!done) return settled;
      settled.then(() => done(), done);
    } as KeywardHook;
  const authenticate = hook(true);
  const optionalAuth = hook(false);
  // authorize() audits a missing scope as access.denied.
  const requireScopes = (...scopes: string[]) => hook(true, (p) => authenticator.authorize(p, { scopes }));
  const requireRoles = (...roles: string[]) => hook(true, (p) => authenticator.authorize(p, { roles }));

  fastify.decorate('keyward', kw);
  fastify.decorate(names.authenticate, authenticate);
  fastify.decorate(names.requireScopes, requireScopes);
  fastify.decorate(names.requireRoles, requireRoles);
  fastify.decorate(names.optionalAuth, optionalAuth);
  fastify.decorate(kInternals, { authenticator, onDenied } satisfies KeywardInternals);
  fastify.decorateRequest(decoratorName, null);

  // The route config is read once, at registration: no per-request lookup on the hot path.
  fastify.addHook('onRoute', (route) => {
    const config = routeConfigOf(route.config?.keyward, route.url);
    if (config && 'public' in config) return;
    if (!config && !global) return;
    const hook =
      config && 'optional' in config
        ? optionalAuth
        : config?.scopes.length
          ? requireScopes(...config.scopes)
          : authenticate;
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [hook, ...existing];
  });
};

/**
 * The keyward Fastify plugin. Decorates `fastify.keyward`, `fastify.authenticate` (an `onRequest`
 * hook), `fastify.requireScopes(...)`, `fastify.requireRoles(...)`, `fastify.optionalAuth` (the
 * hook names prefixed with the `namespace` option when given) and `request.auth` (or
 * `decoratorName`). With `global: true` every route registered after it requires a credential
 * unless its config says `keyward: { public: true }` (or `{ optional: true }`);
 * `keyward: { scopes: [...] }` adds a scope check in either mode.
 * Failures are {@link KeywardFastifyError}s; render them with `keywardErrorHandler`.
 *
 * @example
 * ```ts
 * const app = Fastify()
 * await app.register(keyward, { create: keywardOptionsFromEnv(), global: true })
 * app.setErrorHandler(keywardErrorHandler)
 * app.get('/orders', { config: { keyward: { scopes: ['orders:read'] } } }, async (request) => ({ owner: request.auth?.sub }))
 * app.get('/status', { config: { keyward: { public: true } } }, async () => ({ ok: true }))
 * ```
 */
export const keyward = fp(plugin, { name: '@keyward/fastify', fastify: '5.x' });

/** Reads the internals the plugin decorated (for `keywardRoutes`). */
export function internalsOf(fastify: FastifyInstance): KeywardInternals {
  return (fastify as unknown as Record<symbol, KeywardInternals>)[kInternals] as KeywardInternals;
}
