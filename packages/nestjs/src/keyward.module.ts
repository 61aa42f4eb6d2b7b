import { createKeyward, keywardOptionsFromEnv } from '@keyward/core';
import { ConfigurableModuleBuilder, Module } from '@nestjs/common';
import { KEYWARD, KEYWARD_MODULE_OPTIONS } from './keyward.constants.js';
import { KeywardController } from './keyward.controller.js';
import { KeywardGuard } from './keyward.guard.js';
import { KeywardHealthIndicator } from './keyward.health.js';
import { type KeywardModuleOptions, KeywardService } from './keyward.service.js';

/** Options of the module definition itself, beside {@link KeywardModuleOptions}. */
export interface KeywardModuleExtras {
  /** Register the module globally, so feature modules need not import it. Default false. */
  isGlobal?: boolean;
  /** Mount the contract's routes ({@link KeywardController}). Default false. */
  routes?: boolean;
}

const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<KeywardModuleOptions>({
  moduleName: 'Keyward',
  optionsInjectionToken: KEYWARD_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<KeywardModuleExtras>({ isGlobal: false, routes: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal === true,
    controllers: extras.routes ? [KeywardController] : [],
  }))
  .build();

/**
 * keyward for Nest: provides {@link KeywardService}, the `Keyward` instance (token `KEYWARD`),
 * {@link KeywardGuard} and {@link KeywardHealthIndicator}; with `routes: true`, the contract routes.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [KeywardModule.forRoot({ options: keywardOptionsFromEnv(), isGlobal: true })],
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
 * })
 * ```
 */
@Module({
  providers: [
    {
      provide: KEYWARD,
      inject: [KEYWARD_MODULE_OPTIONS],
      useFactory: (o: KeywardModuleOptions) =>
        o.keyward ?? createKeyward(o.options ?? keywardOptionsFromEnv()),
    },
    KeywardService,
    KeywardGuard,
    KeywardHealthIndicator,
  ],
  exports: [KEYWARD, KeywardService, KeywardGuard, KeywardHealthIndicator],
})
export class KeywardModule extends ConfigurableModuleClass {}
