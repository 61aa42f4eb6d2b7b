import { STATUS_CODES } from 'node:http';
import { KeywardError } from '@keyward/core';
import {
  contractProblemBody,
  type KeywardRoutesOptions,
  type ProblemBody,
  ROUTE_GROUPS,
  type RouteGroup,
} from '@keyward/core/http';
import type { KeywardModuleOptions } from './keyward.service.js';

/**
 * Which of core's routes `KeywardModule` serves (`routes: { … }`), with the other adapters' option
 * names. `routes: true` is `{}`; without `include`, core's groups except `metrics`
 * ({@link NEST_DEFAULT_ROUTE_GROUPS}).
 */
export interface KeywardNestRoutesOptions
  extends Pick<KeywardRoutesOptions, 'include' | 'prefix' | 'wellKnown' | 'routeSets' | 'jwksSharedCache'> {}

/**
 * The groups `routes: true` serves: all of core's but `metrics` (`GET /metrics` needs no credential;
 * name it in `include` to serve it, and keep it off the public internet).
 */
export const NEST_DEFAULT_ROUTE_GROUPS: readonly RouteGroup[] = ROUTE_GROUPS.filter(
  (group) => group !== 'metrics',
);

/** How `KeywardModule` writes error bodies: Nest's shape (default) or the contract's `{error, message}`. */
export type KeywardErrorFormat = 'nest' | 'contract';

/**
 * Nest's own error body, `{statusCode, error, message}` (`error` the status's reason phrase, as
 * Nest's `HttpException`s have it), plus keyward's stable `code`.
 *
 * @example
 * ```ts
 * // {statusCode: 401, error: 'Unauthorized', message: 'token expired', code: 'token_expired'}
 * ```
 */
export const nestProblemBody: ProblemBody = (problem) => ({
  statusCode: problem.status,
  error: STATUS_CODES[problem.status] ?? 'Error',
  message: problem.message,
  code: problem.error,
});

/** The problem body of an error format. */
export function problemBodyOf(format: KeywardErrorFormat): ProblemBody {
  return format === 'contract' ? contractProblemBody : nestProblemBody;
}

const ROUTES_KEYS = [
  'include',
  'prefix',
  'wellKnown',
  'routeSets',
  'jwksSharedCache',
] as const satisfies ReadonlyArray<keyof KeywardNestRoutesOptions>;
// Fails to compile when an option of KeywardNestRoutesOptions is missing from the list above.
const everyRoutesKey: [Exclude<keyof KeywardNestRoutesOptions, (typeof ROUTES_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void everyRoutesKey;

const invalid = (message: string) => new KeywardError('config_invalid', `@keyward/nestjs: ${message}`);

/**
 * The route-table options of the module's `routes` extra, or `undefined` for no routes; throws
 * `config_invalid` naming the option for anything else than `true`, `false`, absent or an object of
 * {@link KeywardNestRoutesOptions}. The table itself (unknown groups, the prefix) is checked when
 * the module builds it, at bootstrap.
 */
export function routesConfigOf(routes: unknown): KeywardNestRoutesOptions | undefined {
  if (routes === undefined || routes === false) return undefined;
  if (routes === true) return { include: NEST_DEFAULT_ROUTE_GROUPS };
  if (typeof routes !== 'object' || routes === null || Array.isArray(routes))
    throw invalid('"routes" must be true, false or an object { include?, prefix?, wellKnown?, routeSets? }');
  const config = routes as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!(ROUTES_KEYS as readonly string[]).includes(key))
      throw invalid(`"routes.${key}" is not an option (known: ${ROUTES_KEYS.join(', ')})`);
  }
  const { include, routeSets, jwksSharedCache } = config;
  if (include !== undefined && (!Array.isArray(include) || include.some((g) => typeof g !== 'string')))
    throw invalid('"routes.include" must be an array of route group names');
  if (
    routeSets !== undefined &&
    (!Array.isArray(routeSets) ||
      routeSets.some(
        (set) =>
          typeof set !== 'object' ||
          set === null ||
          typeof (set as { group?: unknown }).group !== 'string' ||
          typeof (set as { routes?: unknown }).routes !== 'function',
      ))
  )
    throw invalid('"routes.routeSets" must be an array of route sets ({ group, routes() })');
  if (jwksSharedCache !== undefined && typeof jwksSharedCache !== 'boolean')
    throw invalid('"routes.jwksSharedCache" must be a boolean');
  const picked: KeywardNestRoutesOptions = { include: NEST_DEFAULT_ROUTE_GROUPS };
  for (const key of ROUTES_KEYS) {
    if (config[key] !== undefined) (picked as Record<string, unknown>)[key] = config[key];
  }
  return picked;
}

const MODULE_KEYS = [
  'keyward',
  'options',
  'users',
  'onDenied',
  'errorFormat',
  'apiKeys',
  'bearer',
  'apiKeyHeader',
  'cookie',
  'allowedOrigins',
  'getToken',
  'onAuthenticated',
  'realm',
] as const satisfies ReadonlyArray<keyof KeywardModuleOptions>;
// Fails to compile when an option of KeywardModuleOptions (the authenticator's included) is missing
// from the list above: every option is checked at bootstrap.
const everyModuleKey: [Exclude<keyof KeywardModuleOptions, (typeof MODULE_KEYS)[number]>] extends [never]
  ? true
  : never = true;
void everyModuleKey;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Checks `KeywardModule.forRoot()` / `forRootAsync()` options (what the factory resolved, for the
 * async form) at bootstrap: throws `config_invalid` naming the option. What the `Keyward` instance
 * and the authenticator check themselves (`options`' contents, `cookie`, `allowedOrigins`) they
 * check when the module builds them, right after.
 */
export function assertModuleOptions(options: unknown): asserts options is KeywardModuleOptions {
  if (!isObject(options)) throw invalid('the module options must be an object');
  for (const key of Object.keys(options)) {
    if (!(MODULE_KEYS as readonly string[]).includes(key))
      throw invalid(
        `"${key}" is not an option of KeywardModule (known: ${MODULE_KEYS.join(', ')}, and the extras isGlobal, routes)`,
      );
  }
  const {
    keyward,
    options: serviceOptions,
    users,
    onDenied,
    errorFormat,
    apiKeys,
    bearer,
    apiKeyHeader,
  } = options;
  if (
    keyward !== undefined &&
    (!isObject(keyward) || typeof keyward.close !== 'function' || !isObject(keyward.tokens))
  )
    throw invalid('"keyward" must be a Keyward instance (createKeyward())');
  if (keyward !== undefined && serviceOptions !== undefined)
    throw invalid(
      '"keyward" and "options" exclude each other: "options" configures an instance the module creates',
    );
  if (serviceOptions !== undefined && !isObject(serviceOptions))
    throw invalid('"options" must be an object of createKeyward() options');
  if (users !== undefined && (!isObject(users) || typeof users.verify !== 'function'))
    throw invalid('"users" must be a UserDirectory ({ verify(username, password) })');
  if (onDenied !== undefined && typeof onDenied !== 'function')
    throw invalid('"onDenied" must be a function');
  if (errorFormat !== undefined && errorFormat !== 'nest' && errorFormat !== 'contract')
    throw invalid('"errorFormat" must be "nest" or "contract"');
  if (apiKeys !== undefined && typeof apiKeys !== 'boolean') throw invalid('"apiKeys" must be a boolean');
  if (bearer !== undefined && typeof bearer !== 'boolean') throw invalid('"bearer" must be a boolean');
  if (
    apiKeyHeader !== undefined &&
    apiKeyHeader !== false &&
    (typeof apiKeyHeader !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(apiKeyHeader))
  )
    throw invalid('"apiKeyHeader" must be a header name or false');
}

/** Checks the module's extras (`isGlobal`, `routes`) when `forRoot` / `forRootAsync` is called. */
export function moduleExtrasOf(extras: { isGlobal?: unknown; routes?: unknown }): {
  global: boolean;
  routes: KeywardNestRoutesOptions | undefined;
} {
  if (extras.isGlobal !== undefined && typeof extras.isGlobal !== 'boolean')
    throw invalid('"isGlobal" must be a boolean');
  return { global: extras.isGlobal === true, routes: routesConfigOf(extras.routes) };
}
