import { createKeyward, type Keyward, KeywardError, type KeywardServiceOptions } from '@keyward/core';
import type { Authenticator, AuthenticatorOptions, DeniedHook, Principal } from '@keyward/core/http';
import { createAuthenticator } from '@keyward/core/http';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { toFastifyError } from './errors.js';

/** Per-route settings, read when the route is registered: `config: { keyward: … }`. */
export type KeywardRouteConfig =
  /** No authentication, even when the plugin is registered with `global: true`. */
  | { public: true }
  /** Authentication with every one of these scopes (`[]`: any valid credential). */
  | { scopes: readonly string[] };

/** An `onRequest` hook that authenticates the request and sets `request.auth`. */
export type KeywardHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

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
  }
  interface FastifyRequest {
    /** Who made the request; `null` until a keyward hook authenticated it. */
    auth: Principal | null;
  }
  interface FastifyContextConfig {
    /** keyward's per-route settings: `{ public: true }` or `{ scopes: [...] }`. */
    keyward?: KeywardRouteConfig;
  }
}

/** Options of the {@link keyward} plugin: give `keyward` (an instance) or `create` (options for one). */
export interface KeywardPluginOptions extends AuthenticatorOptions {
  /** An instance from `createKeyward()`. You close it: the plugin does not. */
  keyward?: Keyward;
  /** Options for `createKeyward()`: the plugin creates the instance and closes it in `onClose`. */
  create?: KeywardServiceOptions;
  /** Authenticate every route registered after the plugin, except those with `config.keyward.public`. Default false. */
  global?: boolean;
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
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
}

function routeConfigOf(value: unknown, url: string): KeywardRouteConfig | undefined {
  if (value === undefined) return undefined;
  const config = value as { public?: unknown; scopes?: unknown } | null;
  const scopes = config?.scopes;
  const validScopes = Array.isArray(scopes) && scopes.every((s) => typeof s === 'string' && s !== '');
  if (config?.public === true && scopes === undefined) return { public: true };
  if (config?.public === undefined && validScopes) return { scopes };
  throw invalid(`route ${url}: config.keyward must be { public: true } or { scopes: [...scope names] }`);
}

const plugin: FastifyPluginAsync<KeywardPluginOptions> = async (fastify, options) => {
  validate(options);
  const { keyward: given, create, global = false, onDenied, ...authOptions } = options;
  const kw = given ?? (await createKeyward(create));
  // Close only what we created: a given instance belongs to the caller.
  if (!given) fastify.addHook('onClose', () => kw.close());
  const authenticator = createAuthenticator(kw, authOptions);

  async function principalOf(request: FastifyRequest): Promise<Principal> {
    if (request.auth) return request.auth;
    try {
      request.auth = await authenticator.authenticate(request.headers, request.method);
      return request.auth;
    } catch (err) {
      throw toFastifyError(err, onDenied);
    }
  }
  const guard = (check?: (principal: Principal) => void): KeywardHook => {
    return async (request) => {
      const principal = await principalOf(request);
      try {
        check?.(principal);
      } catch (err) {
        throw toFastifyError(err, onDenied);
      }
    };
  };
  const authenticate = guard();

  fastify.decorate('keyward', kw);
  fastify.decorate('authenticate', authenticate);
  // authorize() audits a missing scope as access.denied.
  fastify.decorate('requireScopes', (...scopes: string[]) =>
    guard((p) => authenticator.authorize(p, { scopes })),
  );
  fastify.decorate('requireRoles', (...roles: string[]) =>
    guard((p) => authenticator.authorize(p, { roles })),
  );
  fastify.decorate(kInternals, { authenticator, onDenied } satisfies KeywardInternals);
  fastify.decorateRequest('auth', null);

  // The route config is read once, at registration: no per-request lookup on the hot path.
  fastify.addHook('onRoute', (route) => {
    const config = routeConfigOf(route.config?.keyward, route.url);
    if (config && 'public' in config) return;
    if (!config && !global) return;
    const hook = config?.scopes.length ? fastify.requireScopes(...config.scopes) : authenticate;
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [hook, ...existing];
  });
};

/**
 * The keyward Fastify plugin. Decorates `fastify.keyward`, `fastify.authenticate` (an `onRequest`
 * hook), `fastify.requireScopes(...)`, `fastify.requireRoles(...)` and `request.auth`. With
 * `global: true` every route registered after it requires a credential unless its config says
 * `keyward: { public: true }`; `keyward: { scopes: [...] }` adds a scope check in either mode.
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
