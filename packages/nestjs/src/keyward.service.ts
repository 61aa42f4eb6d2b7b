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
  problemResponse,
  type UserDirectory,
} from '@keyward/core/http';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { KEYWARD, KEYWARD_MODULE_OPTIONS } from './keyward.constants.js';

/** Options of `KeywardModule.forRoot()` / `forRootAsync()`. */
export interface KeywardModuleOptions extends AuthenticatorOptions {
  /** A keyward instance you created; you close it. Without it the module creates one and closes it on shutdown. */
  keyward?: Keyward;
  /** Options of the instance the module creates. Default: `keywardOptionsFromEnv()`. */
  options?: KeywardServiceOptions;
  /** Checks passwords for `POST /auth/login` (with `routes: true`); without it that route answers 404. */
  users?: UserDirectory;
  /** Called for every 401 / 403 (audit, metrics). */
  onDenied?: DeniedHook;
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
  readonly #routes: Map<string, KeywardRoute>;
  #shuttingDown = false;

  constructor(
    @Inject(KEYWARD) readonly keyward: Keyward,
    @Inject(KEYWARD_MODULE_OPTIONS) private readonly options: KeywardModuleOptions,
  ) {
    const { keyward: _, options: __, users, onDenied: ___, ...authOptions } = options;
    this.authenticator = createAuthenticator(keyward, authOptions);
    const routes = keywardRoutes(keyward, {
      ...(users ? { users } : {}),
      isShuttingDown: () => this.#shuttingDown,
    });
    this.#routes = new Map(routes.map((route) => [route.name, route]));
  }

  /**
   * The principal of a request, or throws a `KeywardError` (`missing_credentials`, `token_expired`…;
   * in cookie mode `csrf_rejected` for a cross-site state-changing `method`, see `createAuthenticator`).
   */
  authenticate(headers: HeaderBag, method?: string): Promise<Principal> {
    return this.authenticator.authenticate(headers, method);
  }

  /** Reports a denied request to the `onDenied` option. */
  denied(code: string, status: number): void {
    this.options.onDenied?.(code, status);
  }

  /** Runs one route of the HTTP contract by its core name (`login`, `me`, `rotateKey`…). Never throws. */
  async handle(name: string, request: HttpRequest): Promise<HttpResponse> {
    const route = this.#routes.get(name);
    if (!route) return problemResponse(new KeywardError('not_found', 'no such route'));
    return handleRoute(route, this.authenticator, request, this.options.onDenied);
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
