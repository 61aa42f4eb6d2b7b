import { pino } from 'pino';
import { jsonlFileSink } from './audit/jsonl-file-sink.js';
import type { AuditLog, AuditLogOptions } from './audit/log.js';
import { pinoSink } from './audit/sinks.js';
import { KeywardError } from './errors.js';
import { parsePreviousMasterKeys } from './keys/master-key.js';
import type { RotationPolicyInput } from './keys/rotation-policy.js';
import type { SigningAlgorithm } from './keys/types.js';
import type { AlertsOptions } from './metrics/alerts.js';
import type { KeywardMetrics } from './metrics/metrics.js';
import type { RateLimitOptions } from './ratelimit/limiter.js';
import type { Store } from './store/types.js';
import type { TrustedIssuer } from './tokens/issuers.js';

/** A minimal logger (pino's shape). keyward never passes it a secret, key or whole token. */
export interface KeywardLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/**
 * Options of {@link createKeyward}.
 *
 * @example
 * ```ts
 * const kw = await createKeyward({ dir: './.keyward', issuer: 'https://api.example.com' })
 * ```
 */
export interface KeywardOptions {
  /**
   * The store. Default: Redis when `redisUrl` is set, else PostgreSQL when `databaseUrl` is set,
   * else the embedded SQLite store in `dir`.
   */
  store?: Store;
  /** Use Redis (`redis://…`, `rediss://…`) as store and sync bus; keyward opens and closes the connection. */
  redisUrl?: string;
  /**
   * Key prefix in Redis, so several apps share one server. Default `keyward:`. No `{hash tag}` is
   * needed for Redis Cluster (the driver tags each collection itself; see `createRedisStore`).
   */
  redisPrefix?: string;
  /**
   * Use PostgreSQL (`postgres://…`) as store and sync bus (`LISTEN/NOTIFY`), in the `keyward` tables
   * of the `public` schema (see `createPostgresStore`); keyward opens and closes the pool. When
   * `redisUrl` is set too, Redis wins and `databaseUrl` is ignored (with a warning).
   */
  databaseUrl?: string;
  /**
   * Seed nodes of a Redis Cluster to use as store and sync bus (instead of `redisUrl`); the client
   * discovers the other nodes and follows failovers. Env: `KEYWARD_REDIS_CLUSTER=host:port,…`.
   */
  redisCluster?: ReadonlyArray<{ host: string; port: number }>;
  /**
   * Redis Sentinel nodes to resolve the master from (instead of `redisUrl`), with
   * {@link KeywardOptions.redisSentinelName}. Env: `KEYWARD_REDIS_SENTINELS=host:port,…`.
   */
  redisSentinels?: ReadonlyArray<{ host: string; port: number }>;
  /** Name of the Sentinel-monitored master (`KEYWARD_REDIS_SENTINEL_NAME`). Needed with `redisSentinels`. */
  redisSentinelName?: string;
  /**
   * Timeout of one Redis command or PostgreSQL statement in ms (`createRedisStore`'s
   * `commandTimeoutMs`, `createPostgresStore`'s `queryTimeoutMs`): a write while the primary is
   * down fails with `store_unavailable` (HTTP 503) after at most this long (PostgreSQL: 2 s more
   * when the server stopped answering). Default 5000 on Redis, 10 000 on PostgreSQL. Env:
   * `KEYWARD_STORE_TIMEOUT_MS`.
   */
  storeTimeoutMs?: number;
  /** Folder of the embedded store and, in development, of the generated master key file. Default `./.keyward`. */
  dir?: string;
  /** Master key (Fernet format). Default: `KEYWARD_MASTER_KEY`, then `<dir>/master.key` (generated with a warning). */
  masterKey?: string;
  /**
   * Earlier master keys (Fernet format), accepted only to open a keyring still sealed by one of
   * them, during a master-key rotation: roll every instance to `masterKey` = new and
   * `previousMasterKeys` = [old], run `keyward rekey` (or `kw.keys.rekey()`), then drop the old
   * key. Changes to a keyring keep it sealed by the key that sealed it; only the rekey moves it to
   * `masterKey`. Default: `KEYWARD_MASTER_KEY_PREVIOUS` (comma-separated).
   */
  previousMasterKeys?: readonly string[];
  /** Legacy shared secret (the reference system's `JWT_SECRET`): adds an HS256 key with a stable derived kid. */
  jwtSecret?: string;
  /** Let the legacy `jwtSecret` key sign new tokens (so the reference system can still verify them). Default false. */
  legacySigning?: boolean;
  /**
   * `iss` of issued tokens, checked on verify, and the `issuer` of the discovery documents
   * (`/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration`). Set it in
   * production (the app's external origin, e.g. `https://auth.example.com`; `KEYWARD_ISSUER`) and pin
   * it in downstream verifiers. Unset, tokens carry the default issuer the app gives with
   * {@link KeywardCore.setDefaultIssuer} (the examples: the address they listen on), not checked on verify.
   */
  issuer?: string;
  /**
   * `client_id` of issued access tokens (RFC 9068 §2.2): the OAuth client they are issued to.
   * Default `KEYWARD_CLIENT_ID`; unset, tokens carry none.
   */
  clientId?: string;
  /** `aud` of issued tokens, checked on verify. */
  audience?: string | string[];
  /**
   * External identity providers (Keycloak, Auth0, Entra ID…) whose access tokens the
   * authenticator of every framework package accepts too, each by `jwksUri` or `discovery: true`,
   * with its `audience` and allowed `algorithms` (HMAC never). keyward's own tokens stay on the
   * synchronous path; a token whose `kid` keyward does not know is checked against its issuer's
   * JWKS (cached per `Cache-Control`, refetched on an unknown kid at most once per second). The
   * principal names the issuer (`principal.issuer`). `https:` only unless `allowInsecure`.
   * Default: `KEYWARD_TRUSTED_ISSUERS` (JSON array) with {@link keywardOptionsFromEnv}.
   */
  trustedIssuers?: readonly TrustedIssuer[];
  /** Algorithm of generated signing keys. Default `ES256` (every common verifier supports it); `Ed25519` (RFC 9864: JWKs and tokens say `Ed25519`) or `EdDSA` (the same keys named as older verifiers expect), RS256, PS256, HS256/384/512 on request. Keys already in the keyring keep theirs. */
  signingAlg?: SigningAlgorithm;
  /** Rotation policy (periods, publish lead, token lifetime, `maxRetiringKeys`, `retiredRetention`…). */
  rotation?: Omit<RotationPolicyInput, 'signingAlg'>;
  /** Access-token lifetime in seconds. Default 900 (15 minutes); at most `rotation.maxTokenTtl`. */
  accessTokenTtlSec?: number;
  /** Clock skew tolerated on verify, in seconds. Default 60, at most 600. */
  clockToleranceSec?: number;
  /** Verified-token cache (`false` disables). Default 10,000 entries. */
  verifyCache?: false | { max?: number };
  /** How often each instance polls the store for changes it may have missed, in ms. Default 1000. */
  syncIntervalMs?: number;
  /**
   * How often this instance registers itself in the store (`instances/<id>`: host, pid, version,
   * the keyring and revocation generations it applied, clock offset, sync lag), in ms, from its own
   * timer; the record expires after three intervals. `keyward instances` and the health check
   * `instances` read them. Default 10,000; `false` turns the heartbeat off (the CLI does).
   */
  instanceHeartbeatMs?: number | false;
  /**
   * The rotation scheduler: every instance checks the rotation plan every `intervalMs` (default
   * 60 s) and one of them, under a store lock, rotates what is due. `false` turns the periodic runs
   * off (rotation then only happens on demand, or through `kw.scheduler.tick()`).
   */
  scheduler?: false | { intervalMs?: number; lockTtlMs?: number };
  /** Logger for operational messages. Default: a pino JSON logger; `false` for silence. */
  logger?: KeywardLogger | false;
  /** Audit log: an existing log, options for a new one (sinks…), or `false` for none. Default: pino JSON to stdout. */
  audit?: AuditLog | AuditLogOptions | false;
  /** Metrics (prom-client). Default: a new set on a new registry. */
  metrics?: KeywardMetrics;
  /**
   * Alerts (verify failure rate > 1 %, verify latency > 100 ms, sync lag > 5 s, rotation failures),
   * each fired at most once per window to `onAlert` and / or a webhook. Off unless given.
   */
  alerts?: AlertsOptions;
  /**
   * The brute-force limiter of `POST /auth/login` (failed attempts per username and per client
   * address) and `POST /auth/refresh` (per address), over a sliding window, counted in the store
   * so that every instance shares the counts; past a limit the route answers 429 with
   * `Retry-After`, audited as `access.throttled`. On by default (`DEFAULT_RATE_LIMITS`: login 10
   * per user and 100 per address per 60 s, refresh 60 per address per 60 s); `false` turns it off.
   * Default: `KEYWARD_RATE_LIMIT`, `KEYWARD_RATE_LIMIT_LOGIN`, `KEYWARD_RATE_LIMIT_REFRESH` with
   * {@link keywardOptionsFromEnv}.
   */
  rateLimit?: RateLimitOptions;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

/** The environment variables of the HTTP contract that configure keyward. */
export interface KeywardEnvironment {
  REDIS_URL?: string | undefined;
  KEYWARD_REDIS_PREFIX?: string | undefined;
  /** PostgreSQL URL (`postgres://…`): the store when `REDIS_URL` is not set. */
  DATABASE_URL?: string | undefined;
  /** Seed nodes of a Redis Cluster, `host:port,host:port,…` (instead of `REDIS_URL`). */
  KEYWARD_REDIS_CLUSTER?: string | undefined;
  /** Redis Sentinel nodes, `host:port,…` (instead of `REDIS_URL`), with `KEYWARD_REDIS_SENTINEL_NAME`. */
  KEYWARD_REDIS_SENTINELS?: string | undefined;
  /** Name of the master the sentinels monitor. */
  KEYWARD_REDIS_SENTINEL_NAME?: string | undefined;
  /** Timeout of one store command in ms (Redis; default 5000). */
  KEYWARD_STORE_TIMEOUT_MS?: string | undefined;
  KEYWARD_DIR?: string | undefined;
  KEYWARD_MASTER_KEY?: string | undefined;
  KEYWARD_MASTER_KEY_PREVIOUS?: string | undefined;
  JWT_SECRET?: string | undefined;
  KEYWARD_ISSUER?: string | undefined;
  KEYWARD_AUDIENCE?: string | undefined;
  KEYWARD_CLIENT_ID?: string | undefined;
  KEYWARD_LEGACY_SIGNING?: string | undefined;
  KEYWARD_SIGNING_ALG?: string | undefined;
  /** JSON array of {@link TrustedIssuer}, e.g. `[{"issuer":"https://sso.example.com/realms/main","discovery":true,"audience":"api"}]`. */
  KEYWARD_TRUSTED_ISSUERS?: string | undefined;
  /** `off` turns the login and refresh limiter off (default on). */
  KEYWARD_RATE_LIMIT?: string | undefined;
  /** Login limits `perUser/perAddress/windowSec` (e.g. `10/100/60`), or `off`. */
  KEYWARD_RATE_LIMIT_LOGIN?: string | undefined;
  /** Refresh limits `perAddress/windowSec` (e.g. `60/60`), or `off`. */
  KEYWARD_RATE_LIMIT_REFRESH?: string | undefined;
  /** Instance heartbeat interval in ms (`instanceHeartbeatMs`, default 10000), or `off`. */
  KEYWARD_INSTANCE_HEARTBEAT_MS?: string | undefined;
  /** pino level of keyward's operational log: `fatal`, `error`, `warn`, `info` (default), `debug`, `trace` or `silent`. */
  LOG_LEVEL?: string | undefined;
  /**
   * A JSON-lines audit file (`jsonlFileSink`) next to the default pino sink: the chain continues
   * across restarts, and `GET /admin/audit` / `keyward audit verify` check the stored chain.
   */
  KEYWARD_AUDIT_FILE?: string | undefined;
}

/** The levels `LOG_LEVEL` accepts (pino's). */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads keyward's options from environment variables (`REDIS_URL`, `KEYWARD_REDIS_PREFIX`, `DATABASE_URL`,
 * `KEYWARD_REDIS_CLUSTER` (seed nodes `host:port,…`), `KEYWARD_REDIS_SENTINELS` (`host:port,…`) with
 * `KEYWARD_REDIS_SENTINEL_NAME`, `KEYWARD_STORE_TIMEOUT_MS`, `KEYWARD_DIR`, `KEYWARD_MASTER_KEY`,
 * `KEYWARD_MASTER_KEY_PREVIOUS` (comma-separated), `JWT_SECRET`, `KEYWARD_ISSUER`, `KEYWARD_AUDIENCE`, `KEYWARD_CLIENT_ID`, `KEYWARD_LEGACY_SIGNING`,
 * `KEYWARD_SIGNING_ALG`, `KEYWARD_TRUSTED_ISSUERS` (a JSON array of trusted issuers), `KEYWARD_RATE_LIMIT` (`off`),
 * `KEYWARD_RATE_LIMIT_LOGIN` (`perUser/perAddress/windowSec`), `KEYWARD_RATE_LIMIT_REFRESH` (`perAddress/windowSec`),
 * `KEYWARD_INSTANCE_HEARTBEAT_MS` (whole ms of at least 100, or `off`), `KEYWARD_AUDIT_FILE` (a JSON-lines
 * audit file besides stdout), `LOG_LEVEL`
 * (the level of the default pino logger; any other value is `config_invalid`)).
 *
 * @example
 * ```ts
 * const kw = await createKeyward({ ...keywardOptionsFromEnv(), issuer: 'https://api.example.com' })
 * ```
 */
export function keywardOptionsFromEnv(env: KeywardEnvironment = process.env): KeywardOptions {
  const options: KeywardOptions = { dir: env.KEYWARD_DIR || './.keyward' };
  if (env.REDIS_URL) options.redisUrl = env.REDIS_URL;
  if (env.KEYWARD_REDIS_PREFIX) options.redisPrefix = env.KEYWARD_REDIS_PREFIX;
  if (env.DATABASE_URL) options.databaseUrl = env.DATABASE_URL;
  if (env.KEYWARD_REDIS_CLUSTER)
    options.redisCluster = parseHostList('KEYWARD_REDIS_CLUSTER', env.KEYWARD_REDIS_CLUSTER);
  if (env.KEYWARD_REDIS_SENTINELS) {
    options.redisSentinels = parseHostList('KEYWARD_REDIS_SENTINELS', env.KEYWARD_REDIS_SENTINELS);
    if (!env.KEYWARD_REDIS_SENTINEL_NAME)
      throw new KeywardError('config_invalid', 'KEYWARD_REDIS_SENTINELS needs KEYWARD_REDIS_SENTINEL_NAME');
  }
  if (env.KEYWARD_REDIS_SENTINEL_NAME) options.redisSentinelName = env.KEYWARD_REDIS_SENTINEL_NAME;
  const redisSources = [env.REDIS_URL, env.KEYWARD_REDIS_CLUSTER, env.KEYWARD_REDIS_SENTINELS].filter(
    Boolean,
  );
  if (redisSources.length > 1)
    throw new KeywardError(
      'config_invalid',
      'set only one of REDIS_URL, KEYWARD_REDIS_CLUSTER and KEYWARD_REDIS_SENTINELS',
    );
  if (env.KEYWARD_STORE_TIMEOUT_MS) {
    const ms = env.KEYWARD_STORE_TIMEOUT_MS.trim();
    if (!/^\d{1,6}$/.test(ms) || Number(ms) < 1 || Number(ms) > 600_000)
      throw new KeywardError(
        'config_invalid',
        'KEYWARD_STORE_TIMEOUT_MS must be a whole number of ms (1-600000)',
      );
    options.storeTimeoutMs = Number(ms);
  }
  if (env.KEYWARD_MASTER_KEY) options.masterKey = env.KEYWARD_MASTER_KEY;
  if (env.KEYWARD_MASTER_KEY_PREVIOUS)
    options.previousMasterKeys = parsePreviousMasterKeys(env.KEYWARD_MASTER_KEY_PREVIOUS);
  if (env.JWT_SECRET) options.jwtSecret = env.JWT_SECRET;
  if (env.KEYWARD_ISSUER) options.issuer = env.KEYWARD_ISSUER;
  if (env.KEYWARD_AUDIENCE) options.audience = env.KEYWARD_AUDIENCE;
  if (env.KEYWARD_CLIENT_ID) options.clientId = env.KEYWARD_CLIENT_ID;
  if (env.KEYWARD_SIGNING_ALG) options.signingAlg = env.KEYWARD_SIGNING_ALG as SigningAlgorithm;
  if (env.KEYWARD_TRUSTED_ISSUERS) options.trustedIssuers = parseTrustedIssuers(env.KEYWARD_TRUSTED_ISSUERS);
  const rateLimit = parseRateLimits(env);
  if (rateLimit !== undefined) options.rateLimit = rateLimit;
  const heartbeat = env.KEYWARD_INSTANCE_HEARTBEAT_MS?.trim().toLowerCase();
  if (heartbeat !== undefined && heartbeat !== '') {
    if (heartbeat !== 'off' && !(/^\d{1,9}$/.test(heartbeat) && Number(heartbeat) >= 100))
      throw new KeywardError(
        'config_invalid',
        'KEYWARD_INSTANCE_HEARTBEAT_MS must be a whole number of ms (at least 100) or off',
        { details: { option: 'KEYWARD_INSTANCE_HEARTBEAT_MS' } },
      );
    options.instanceHeartbeatMs = heartbeat === 'off' ? false : Number(heartbeat);
  }
  if (env.LOG_LEVEL) {
    if (!LOG_LEVELS.includes(env.LOG_LEVEL)) {
      throw new KeywardError('config_invalid', `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
    }
    options.logger = pino({ name: 'keyward', level: env.LOG_LEVEL });
  }
  // Opened here, so a torn last line refuses the start-up (`audit_file_invalid`) with one line.
  if (env.KEYWARD_AUDIT_FILE) options.audit = { sinks: [pinoSink(), jsonlFileSink(env.KEYWARD_AUDIT_FILE)] };
  if (env.KEYWARD_LEGACY_SIGNING !== undefined && env.KEYWARD_LEGACY_SIGNING !== '') {
    if (!['true', 'false', '1', '0'].includes(env.KEYWARD_LEGACY_SIGNING)) {
      throw new KeywardError('config_invalid', 'KEYWARD_LEGACY_SIGNING must be true or false');
    }
    options.legacySigning = env.KEYWARD_LEGACY_SIGNING === 'true' || env.KEYWARD_LEGACY_SIGNING === '1';
  }
  return options;
}

/** Parses a `host:port,host:port` list (`KEYWARD_REDIS_CLUSTER`, `KEYWARD_REDIS_SENTINELS`). */
function parseHostList(name: string, value: string): Array<{ host: string; port: number }> {
  return value.split(',').map((item) => {
    const match = /^\s*(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\s*$/.exec(item);
    const port = Number(match?.[2]);
    if (!match?.[1] || !(port >= 1 && port <= 65535))
      throw new KeywardError('config_invalid', `${name} must be host:port,host:port,…`);
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

/** Parses `KEYWARD_RATE_LIMIT*` (`undefined`: none is set, the defaults apply). */
function parseRateLimits(env: KeywardEnvironment): RateLimitOptions | undefined {
  const all = env.KEYWARD_RATE_LIMIT?.trim().toLowerCase();
  if (all !== undefined && all !== '' && !['off', 'on'].includes(all)) {
    throw new KeywardError('config_invalid', 'KEYWARD_RATE_LIMIT must be on or off');
  }
  if (all === 'off') return false;
  const rule = (name: string, value: string | undefined, members: readonly string[]) => {
    const text = value?.trim().toLowerCase();
    if (text === undefined || text === '') return undefined;
    if (text === 'off') return false as const;
    const parts = text.split('/');
    if (parts.length !== members.length || !parts.every((p) => /^\d{1,9}$/.test(p))) {
      throw new KeywardError('config_invalid', `${name} must be ${members.join('/')} (whole numbers) or off`);
    }
    return Object.fromEntries(members.map((m, i) => [m, Number(parts[i])]));
  };
  const login = rule('KEYWARD_RATE_LIMIT_LOGIN', env.KEYWARD_RATE_LIMIT_LOGIN, [
    'perUser',
    'perAddress',
    'windowSec',
  ]);
  const refresh = rule('KEYWARD_RATE_LIMIT_REFRESH', env.KEYWARD_RATE_LIMIT_REFRESH, [
    'perAddress',
    'windowSec',
  ]);
  if (login === undefined && refresh === undefined) return undefined;
  return { ...(login !== undefined ? { login } : {}), ...(refresh !== undefined ? { refresh } : {}) };
}

/** Parses `KEYWARD_TRUSTED_ISSUERS`: a JSON array of objects (checked in full by `createKeyward`). */
function parseTrustedIssuers(value: string): TrustedIssuer[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new KeywardError('config_invalid', 'KEYWARD_TRUSTED_ISSUERS must be a JSON array of issuers');
  }
  if (!Array.isArray(parsed) || !parsed.every((i) => typeof i === 'object' && i !== null)) {
    throw new KeywardError('config_invalid', 'KEYWARD_TRUSTED_ISSUERS must be a JSON array of issuers');
  }
  return parsed as TrustedIssuer[];
}
