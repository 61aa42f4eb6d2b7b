import { type HeaderBag, type Principal, reportProblem } from '@keyward/core/http';
import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { OPTIONAL_KEY, PUBLIC_KEY, ROLES_KEY, SCOPES_KEY } from './keyward.constants.js';
import type { KeywardRequest } from './keyward.decorators.js';
import { toHttpException } from './keyward.exceptions.js';
import { type KeywardHttpRequest, KeywardService } from './keyward.service.js';

/**
 * The HTTP request of a context: what `switchToHttp().getRequest()` returns, read as the context's
 * first argument. `switchToHttp()` assigns three new closures to the context on every call, and the
 * default hooks each need the request: about 1,500 instructions per request, a sixth of what a cached
 * request cost over no authentication on NestJS with Fastify (bench:http:instructions). A hand-made context without `getArgByIndex` (a test's) goes through
 * `switchToHttp()`.
 */
function requestOf<T>(context: ExecutionContext): T {
  return typeof context.getArgByIndex === 'function'
    ? context.getArgByIndex<T>(0)
    : context.switchToHttp().getRequest<T>();
}

/** What the guard reads of a route's decorators. */
export interface RouteAuth {
  /** `@Public()`: no authentication at all. */
  public: boolean;
  optional: boolean;
  scopes: string[];
  roles: string[];
}

/**
 * Authenticates HTTP requests (bearer JWT or API key) and checks `@Scopes()` / `@Roles()`; skips
 * `@Public()` routes; on `@OptionalAuth()` routes lets requests without a credential through. Use it globally (`APP_GUARD`) or per route (`@UseGuards(KeywardGuard)`).
 * Subclass it and override the `protected` hooks to change one step.
 *
 * @example
 * ```ts
 * providers: [{ provide: APP_GUARD, useClass: KeywardGuard }]
 *
 * @Injectable()
 * class TenantGuard extends KeywardGuard {
 *   protected override onAuthenticated(principal: Principal, context: ExecutionContext) {
 *     super.onAuthenticated(principal, context)
 *     context.switchToHttp().getRequest().tenant = principal.claims.tenant
 *   }
 * }
 * ```
 */
@Injectable()
export class KeywardGuard implements CanActivate {
  constructor(
    @Inject(KeywardService) protected readonly keyward: KeywardService,
    @Inject(Reflector) protected readonly reflector: Reflector,
    @Inject(HttpAdapterHost) protected readonly adapterHost: HttpAdapterHost,
  ) {}

  // The decorators' metadata of each handler (and its class), read once: a route's metadata is set
  // when its class is declared, so no request pays for the reflection lookups.
  readonly #routeAuth = new WeakMap<object, { cls: object; auth: RouteAuth }>();

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const route = this.routeAuthOf(context);
    if (route.public) return true;
    try {
      const headers = this.getCredentialHeaders(context);
      const method = this.getRequestMethod(context);
      const request = this.getHttpRequest(context);
      // Synchronous for keyward's own tokens: no promise but the one of this async method (Nest
      // awaits a guard's result anyway, and callers of canActivate() rely on a promise).
      const outcome = this.keyward.authenticator.identify(headers, method, request, !route.optional);
      const principal = outcome instanceof Promise ? await outcome : outcome;
      // @OptionalAuth() without a credential: the route runs anonymously.
      if (principal === undefined) return true;
      // authorize() audits a missing scope or role as access.denied.
      if (route.scopes.length > 0 || route.roles.length > 0)
        this.keyward.authenticator.authorize(principal, { scopes: route.scopes, roles: route.roles });
      const hooked = this.onAuthenticated(principal, context);
      if (hooked !== undefined) await hooked;
      return true;
    } catch (err) {
      throw this.handleError(err, context);
    }
  }

  /** `@Public()`, `@OptionalAuth()`, `@Scopes()` and `@Roles()` of the context's handler and class. */
  protected routeAuthOf(context: ExecutionContext): RouteAuth {
    const handler = context.getHandler();
    const cls = context.getClass();
    const cached = this.#routeAuth.get(handler);
    if (cached !== undefined && cached.cls === cls) return cached.auth;
    const targets = [handler, cls];
    const auth: RouteAuth = {
      public: this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets) === true,
      optional: this.reflector.getAllAndOverride<boolean>(OPTIONAL_KEY, targets) === true,
      scopes: this.reflector.getAllAndMerge<string[]>(SCOPES_KEY, targets) ?? [],
      roles: this.reflector.getAllAndOverride<string[]>(ROLES_KEY, targets) ?? [],
    };
    this.#routeAuth.set(handler, { cls, auth });
    return auth;
  }

  /**
   * Where the credential is read from. Default: the HTTP request's headers; other contexts (GraphQL,
   * WebSocket, RPC) have none, so they are denied until a subclass reads their credential here.
   */
  protected getCredentialHeaders(context: ExecutionContext): HeaderBag {
    if (context.getType() !== 'http') return {};
    return requestOf<{ headers?: HeaderBag }>(context).headers ?? {};
  }

  /**
   * The HTTP request handed to the module's `getToken` / `onAuthenticated` options. Default: the
   * HTTP request; `undefined` in other contexts.
   */
  protected getHttpRequest(context: ExecutionContext): KeywardHttpRequest | undefined {
    if (context.getType() !== 'http') return undefined;
    return requestOf<KeywardHttpRequest>(context);
  }

  /**
   * The request's method, for cookie mode's same-origin check on state-changing requests. Default:
   * the HTTP request's method; `undefined` elsewhere (then a cookie credential is checked as for a write).
   */
  protected getRequestMethod(context: ExecutionContext): string | undefined {
    if (context.getType() !== 'http') return undefined;
    return requestOf<{ method?: string }>(context).method;
  }

  /** Called with the verified principal. Default: sets `request.user` and `request.auth`. */
  protected onAuthenticated(principal: Principal, context: ExecutionContext): void | Promise<void> {
    const request = requestOf<KeywardRequest>(context);
    request.user = principal;
    request.auth = principal;
  }

  /**
   * Turns a failure into what the guard throws. Default: sets the `WWW-Authenticate` challenge on
   * the response, reports the denial, and returns {@link toHttpException}'s exception (its body in
   * the module's `errorFormat`).
   */
  protected handleError(err: unknown, context: ExecutionContext): unknown {
    const problem = reportProblem(err, this.keyward.denied.bind(this.keyward));
    if (problem.status >= 500) return err;
    if (context.getType() === 'http') {
      const response = context.switchToHttp().getResponse<unknown>();
      for (const [name, value] of Object.entries(problem.headers)) {
        this.adapterHost.httpAdapter.setHeader(response, name, value);
      }
    }
    return toHttpException(err, this.keyward.errorFormat);
  }
}
