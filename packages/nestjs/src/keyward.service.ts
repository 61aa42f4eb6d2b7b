import type { Keyward, KeywardServiceOptions } from '@keyward/core';
import { KeywardError } from '@keyward/core';
import {
  type Authenticator,
  type AuthenticatorOptions,
  createAuthenticator,
  type DeniedHook,
  type HeaderBag,
  type HttpRequest,
  type HttpResponse,
  handleRoute,
  type KeywardRoute,
  keywardRoutes,
  type Principal,
  type ProblemBody,
  problemResponse,
  type UserDirectory,
  withRequestHooks,
} from '@keyward/core/http';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { KEYWARD, KEYWARD_MODULE_OPTIONS, KEYWARD_ROUTES } from './keyward.constants.js';
import { type KeywardErrorFormat, type KeywardNestRoutesOptions, problemBodyOf } from './keyward.options.js';

/**
 * The HTTP request the guard hands to the `getToken` and `onAuthenticated` options: the platform's
 * own (an Express `Request` or a Fastify `FastifyRequest`); cast it to yours. On keyward's own
 * routes (`routes: true`) it is `{ headers, method }` only.
 */
export interface KeywardHttpRequest {
  headers: HeaderBag;
  method?: string;
  [key: string]: unknown;
}

/** Options of `KeywardModule.forRoot()` / `forRootAsync()`. */
export interface KeywardModuleOptions extends Omit<AuthenticatorOptions, 'getToken' | 'onAuthenticated'> {
  /**
   * A custom token extractor (passport-jwt's `jwtFromRequest`), called with the HTTP request: the
   * token, or `undefined` / `null` for none. It replaces reading `Authorization: Bearer`; a
   * returned token is verified like a bearer token. May be async.
   *
   * @example
   * ```ts
   * KeywardModule.forRoot({ getToken: (req) => req.headers['x-access-token'] as string | undefined })
   * ```
   */
  getToken?: (request: KeywardHttpRequest) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Called with every verified principal and the HTTP request, before the guard checks
   * `@Scopes()` / `@Roles()`: return the principal to use (changed or not, e.g. roles from your
   * database: passport-jwt's `validate`), or throw a `KeywardError` to refuse (a disabled user).
   * Anything else thrown is a 500. May be async. (The guard's protected `onAuthenticated` hook
   * runs later, with the principal this returned.)
   */
  onAuthenticated?: (principal: Principal, request: KeywardHttpRequest) => Principal | Promise<Principal>;
  /** A keyward instance you created; you close it. Without it the module creates one and closes it on shutdown. */
  keyward?: Keyward;
  /** Options of the instance the module creates. Default: `keywardOptionsFromEnv()`. */
  options?: KeywardServiceOptions;
  /** Checks passwords for `POST /auth/login` (with `routes`); without it that route is not served. */
  users?: UserDirectory;
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
  /**
   * The body of keyward's error answers — the guard's on the app's own routes, the module's routes',
   * `KeywardExceptionFilter`'s: `nest` (default) Nest's `{statusCode, error, message}` plus keyward's
   * `code`; `contract` the HTTP contract's `{error, message}` (`error` = the code), as the other
   * adapters answer. Status and headers (`WWW-Authenticate`, `Retry-After`, `Cache-Control`) are
   * the same in both.
   */
  errorFormat?: KeywardErrorFormat;
}

/**
 * The keyward instance of the module and what the guard and the routes need of it.
 *
 * @example
 * ```ts
 * constructor(@Inject(KeywardService) private readonly keyward: KeywardService) {}
 * issue(sub: string) { return this.keyward.keyward.tokens.issue({ sub, scopes: ['read'] }) }
 * ```
 */
@Injectable()
export class KeywardService implements BeforeApplicationShutdown, OnApplicationShutdown {
  /** Authenticates a request's headers the same way as every keyward package. */
  readonly authenticator: Authenticator;
  /** The routes the module serves (`routes`), or core's whole table for {@link handle} without it. */
  readonly routes: readonly KeywardRoute[];
  /** How error bodies are written (the `errorFormat` option). */
  readonly errorFormat: KeywardErrorFormat;
  /** The body builder of {@link errorFormat}, for `problemResponse` / `handleRoute`. */
  readonly problemBody: ProblemBody;
  readonly #routes: Map<string, KeywardRoute>;
  #shuttingDown = false;

  constructor(
    @Inject(KEYWARD) readonly keyward: Keyward,
    @Inject(KEYWARD_MODULE_OPTIONS) private readonly options: KeywardModuleOptions,
    @Optional() @Inject(KEYWARD_ROUTES) routesConfig?: KeywardNestRoutesOptions | false,
  ) {
    const { users, errorFormat } = options;
    this.authenticator = createAuthenticator(keyward, authenticatorOptionsOf(options));
    this.errorFormat = errorFormat ?? 'nest';
    this.problemBody = problemBodyOf(this.errorFormat);
    this.routes = keywardRoutes(keyward, {
      ...(routesConfig || {}),
      ...(users ? { users } : {}),
      isShuttingDown: () => this.#shuttingDown,
    });
    this.#routes = new Map(this.routes.map((route) => [route.name, route]));
  }

  /**
   * The principal of a request, or throws a `KeywardError` (`missing_credentials`, `token_expired`…;
   * in cookie mode `csrf_rejected` for a cross-site state-changing `method`, see `createAuthenticator`).
   */
  authenticate(headers: HeaderBag, method?: string, request?: KeywardHttpRequest): Promise<Principal> {
    return this.authenticator.authenticate(headers, method, request);
  }

  /**
   * The principal of a request with a valid credential, `undefined` without one (an
   * `Authorization` header of another scheme counts as none); a bad credential still throws.
   */
  optional(
    headers: HeaderBag,
    method?: string,
    request?: KeywardHttpRequest,
  ): Promise<Principal | undefined> {
    return this.authenticator.optional(headers, method, request);
  }

  /** Reports a denied request to the `onDenied` option. */
  denied(code: string, status: number): void {
    this.options.onDenied?.(code, status);
  }

  /** Runs one route of the HTTP contract by its core name (`login`, `me`, `rotateKey`…). Never throws. */
  async handle(name: string, request: HttpRequest): Promise<HttpResponse> {
    const route = this.#routes.get(name);
    if (!route)
      return problemResponse(new KeywardError('not_found', 'no such route'), undefined, this.problemBody);
    return this.run(route, request);
  }

  /** Runs one route (authentication, scopes, handler) with the module's error format. Never throws. */
  run(route: KeywardRoute, request: HttpRequest): Promise<HttpResponse> {
    const native = request.native ?? { headers: request.headers, method: route.method };
    return handleRoute(
      route,
      this.authenticator,
      { ...request, native },
      this.options.onDenied,
      this.problemBody,
    );
  }

  /** True once the application is shutting down (readiness answers 503). */
  get isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  beforeApplicationShutdown(): void {
    this.#shuttingDown = true;
  }

  async onApplicationShutdown(): Promise<void> {
    this.#shuttingDown = true;
    if (!this.options.keyward) await this.keyward.close();
  }
}

/**
 * The authenticator's options out of the module's: `getToken` and `onAuthenticated` receive the
 * platform's request (the guard's, or the one keyward's own routes hand on).
 */
export function authenticatorOptionsOf(options: KeywardModuleOptions): AuthenticatorOptions {
  const {
    keyward: _,
    options: __,
    users: ___,
    onDenied: ____,
    errorFormat: _____,
    getToken,
    onAuthenticated,
    ...authOptions
  } = options;
  // The guard hands its HTTP request, keyward's own routes the one they serve; a guard outside HTTP
  // (GraphQL, RPC) hands none, and the hooks get an empty request rather than undefined.
  return withRequestHooks<KeywardHttpRequest>(
    { ...authOptions, getToken, onAuthenticated },
    (native) => (native as KeywardHttpRequest | undefined) ?? { headers: {} },
  );
}
