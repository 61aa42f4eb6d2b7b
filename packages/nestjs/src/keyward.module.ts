import { createKeyward, type Keyward, keywardOptionsFromEnv } from '@keyward/core';
import { createAuthenticator, keywardRoutes } from '@keyward/core/http';
import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { KEYWARD, KEYWARD_MODULE_OPTIONS, KEYWARD_ROUTES } from './keyward.constants.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardHealthIndicator } from './keyward.health.js';
import { assertModuleOptions, type KeywardNestRoutesOptions, moduleExtrasOf } from './keyward.options.js';
import { KeywardRoutesRegistrar } from './keyward.routes.js';
import { authenticatorOptionsOf, type KeywardModuleOptions, KeywardService } from './keyward.service.js';

/** Options of the module definition itself, beside {@link KeywardModuleOptions}. */
export interface KeywardModuleExtras {
  /** Register the module globally, so feature modules need not import it. Default false. */
  isGlobal?: boolean;
  /**
   * Serve the contract's routes from core's route table. `true`: core's groups except `metrics`
   * (`GET /metrics` answers without a credential: name it in `include` to serve it); an object
   * chooses `include` (the groups, `metrics` and any of `routeSets` only when named), `prefix`
   * (`/api`: `/api/auth/login`, the JWKS and discovery staying at the root unless
   * `wellKnown: 'prefixed'`), `routeSets`, `jwksSharedCache`. Nest's global prefix, guards,
   * interceptors and pipes do not apply to them: the routes authenticate themselves. Default false:
   * no routes.
   */
  routes?: boolean | KeywardNestRoutesOptions;
}

const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<KeywardModuleOptions>({
  moduleName: 'Keyward',
  optionsInjectionToken: KEYWARD_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<KeywardModuleExtras>({ isGlobal: false, routes: false }, (definition, extras) => {
    const { global, routes } = moduleExtrasOf(extras);
    return {
      ...definition,
      global,
      providers: [
        ...(definition.providers ?? []),
        { provide: KEYWARD_ROUTES, useValue: routes ?? false },
        ...(routes ? [KeywardRoutesRegistrar] : []),
      ],
    };
  })
  .build();

/**
 * The instance of the module, once its options are checked; an instance the module created is
 * closed again when the authenticator or the route table refuses their options.
 */
async function keywardOf(o: unknown, routes: KeywardNestRoutesOptions | false): Promise<Keyward> {
  assertModuleOptions(o);
  const kw = o.keyward ?? (await createKeyward(o.options ?? keywardOptionsFromEnv()));
  try {
    createAuthenticator(kw, authenticatorOptionsOf(o));
    if (routes) keywardRoutes(kw, { ...routes, ...(o.users ? { users: o.users } : {}) });
  } catch (err) {
    if (!o.keyward) await kw.close();
    throw err;
  }
  return kw;
}

/**
 * keyward for Nest: provides {@link KeywardService}, the `Keyward` instance (token `KEYWARD`),
 * {@link KeywardGuard} and {@link KeywardHealthIndicator}; with `routes`, the contract's routes.
 * Every option is checked at bootstrap (`config_invalid` naming it).
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     KeywardModule.forRoot({ options: keywardOptionsFromEnv(), isGlobal: true, routes: { prefix: '/api' } }),
 *   ],
 *   providers: [
 *     { provide: APP_GUARD, useClass: KeywardGuard },
 *     { provide: APP_FILTER, useClass: KeywardExceptionFilter },
 *   ],
 * })
 * class AppModule {}
 *
 * // or, from configuration:
 * KeywardModule.forRootAsync({
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ options: { redisUrl: config.get('REDIS_URL') } }),
 *   routes: true,
 * })
 * ```
 */
@Module({
  providers: [
    {
      provide: KEYWARD,
      inject: [KEYWARD_MODULE_OPTIONS, KEYWARD_ROUTES],
      useFactory: keywardOf,
    },
    KeywardService,
    KeywardGuard,
    KeywardHealthIndicator,
  ],
  exports: [KEYWARD, KeywardService, KeywardGuard, KeywardHealthIndicator],
})
export class KeywardModule extends ConfigurableModuleClass {}
