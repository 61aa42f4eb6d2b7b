import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { type AuditLog, createAuditLog } from './audit/log.js';
import { KeywardError } from './errors.js';
import { decryptJwt, encryptJwt } from './jwt/jwe.js';
import { signJwt } from './jwt/sign.js';
import type { JwtClaims, JwtVerifyOverrides, VerifiedJwt } from './jwt/types.js';
import { createJwtVerifier } from './jwt/verify.js';
import { normalizeSigningAlgorithm } from './keys/algorithms.js';
import type { KeyMaterial } from './keys/generate.js';
import type { ImportKeyOptions } from './keys/import.js';
import {
  type ImportKeyResult,
  KeyService,
  type RevokeResult,
  type RotateOptions,
  type RotateResult,
} from './keys/key-service.js';
import { type JsonWebKeySet, Keyring, type UnsealedKey } from './keys/keyring.js';
import {
  destroyedRecords,
  KEYRING_KEY,
  type KeyringDocument,
  KeyringRepository,
  type RekeyResult,
  sameLineage,
} from './keys/keyring-store.js';
import { legacyDataKey, legacyEncryptionKey, legacySigningKey } from './keys/legacy.js';
import { loadMasterKey, MASTER_KEY_FILE } from './keys/master-key.js';
import { type RotationPolicy, resolveRotationPolicy } from './keys/rotation-policy.js';
import { createRotationScheduler, type RotationTickResult } from './keys/scheduler.js';
import type { KeyRecord } from './keys/types.js';
import { type Alerts, createAlerts } from './metrics/alerts.js';
import { createKeywardMetrics, type KeywardMetrics } from './metrics/metrics.js';
import type { KeywardLogger, KeywardOptions } from './options.js';
import { createPostgresStore } from './store/postgres.js';
import { createRedisStore, type RedisStoreOptions } from './store/redis.js';
import { createSqliteStore } from './store/sqlite.js';
import type { Store } from './store/types.js';
import {
  createInstanceHeartbeat,
  type InstanceHeartbeat,
  type InstancesReport,
  listInstances,
  resolveHeartbeatMs,
} from './sync/instances.js';
import {
  persistRevocation,
  type RevocationEvent,
  RevocationSet,
  SUBJECT_ACK_CLAIM,
} from './sync/revocations.js';
import { KeyringSync, type SyncChange, type SyncStatus } from './sync/sync.js';

/** Options of {@link Keyward.jwt}`.sign`. */
export interface SignOptions {
  /** Lifetime in seconds. Default `accessTokenTtlSec`; at most the policy's `maxTokenTtl`. */
  expiresInSec?: number;
  /** `typ` header. Default `at+jwt` (RFC 9068). */
  typ?: string;
}

/** JWS / JWE operations of a {@link Keyward} instance. */
export interface KeywardJwt {
  /** Signs claims with the active signing key; adds `iat`, `exp`, `jti`, `iss` (see {@link KeywardCore.issuer}), and `aud` / `client_id` when configured. Synchronous. */
  sign(claims: Record<string, unknown>, options?: SignOptions): string;
  /** Verifies a JWS on the hot path: synchronous, in memory, no I/O. Throws a `KeywardError` with a stable code. */
  verify(token: string, overrides?: JwtVerifyOverrides): VerifiedJwt;
  /** Encrypts claims as a JWE (`dir` + `A256GCM`) under the active encryption key. */
  encrypt(claims: Record<string, unknown>, options?: { expiresInSec?: number }): Promise<string>;
  /** Decrypts a JWE made by keyward (or by the reference system, when `jwtSecret` is set). */
  decrypt(token: string): Promise<JwtClaims>;
}

/** Key operations of a {@link Keyward} instance. */
export interface KeywardKeys {
  /** The public JWKS: pending, active and retiring asymmetric signing keys. */
  jwks(): JsonWebKeySet;
  /** Every key's metadata (never material). */
  list(): KeyRecord[];
  /** The current in-memory snapshot. */
  snapshot(): Keyring;
  /** Rotates a key now (see {@link KeyService.rotate}). */
  rotate(options?: RotateOptions): Promise<RotateResult>;
  /** Emergency revocation (see {@link KeyService.revoke}). */
  revoke(kid: string, reason: string): Promise<RevokeResult>;
  /** Retires a retiring data key once a rewrap left nothing under it (`remaining` must be 0). */
  retireDataKey(kid: string, remaining: number): Promise<void>;
  /**
   * Re-seals the whole keyring under this instance's `masterKey`, in one compare-and-set, while
   * every instance keeps serving (master-key rotation). The stored keyring must be sealed by one
   * of `previousMasterKeys` (or already by `masterKey`: then nothing is written and `changed` is
   * false). Signing keys do not change, so every token stays valid. Audited as `key.rekeyed`
   * (master-key ids only). Instances that hold the new key take the new document on their next
   * sync; instances holding only the old key keep their snapshot and report `master_key_mismatch`
   * in health.
   *
   * @example
   * ```ts
   * // instances run with masterKey = new, previousMasterKeys = [old]
   * const { previousMasterKeyId, masterKeyId } = await kw.keys.rekey()
   * ```
   */
  rekey(): Promise<RekeyResult>;
  /**
   * Destroys a revoked data key's material once a rewrap left nothing under it (see
   * {@link KeyService.destroyDataKey}); audited as `key.destroyed`. `false` when already destroyed.
   */
  destroyDataKey(kid: string): Promise<boolean>;
  /**
   * Imports keys an app already has (bring your own key): a PEM (SPKI, PKCS#8, PKCS#1), a JWK, a
   * JWKS (every key, verify-only) or an HMAC secret. `state: 'active'` makes it the signing key the
   * way a rotation would (the previous one turns verify-only); `'verify-only'` verifies until
   * `verifyUntil` (default now + `retainFor`). `defaultForKidless` lets it verify tokens without a
   * `kid` header. One compare-and-set of the keyring document; sealed like generated keys, kid kept,
   * `origin: 'imported'`; audited as `key.imported` (kid, alg, state only). See {@link KeyService.import}
   * for the refusal codes.
   *
   * @example
   * ```ts
   * // an express-jwt app's HS256 secret, its tokens carry no kid
   * await kw.keys.import({ kid: 'express-jwt', alg: 'HS256', key: process.env.JWT_SECRET!, state: 'verify-only', defaultForKidless: true })
   * ```
   */
  import(options: ImportKeyOptions): Promise<ImportKeyResult>;
}

/** Token-level revocation, applied on every instance. */
export interface KeywardRevocations {
  /** Revokes one access token by its `jti` until `expiresAt` (epoch ms; its `exp`). */
  revokeToken(jti: string, expiresAt: number): Promise<void>;
  /**
   * Revokes every token of `sub` issued up to now ("logout everywhere"), including tokens minted
   * up to the policy's `clockSkew` later by an instance whose clock runs ahead. Tokens signed
   * afterwards by an instance that knows the revocation still verify (they carry the `kw_snb`
   * claim). The record expires `maxTokenTtl + clockSkew` (plus the verifiers' clock tolerance)
   * after it was written, when every token it could revoke has expired.
   */
  revokeSubject(sub: string): Promise<void>;
}

/** Sync of a {@link KeywardCore}: status for health, a forced refresh, and change notifications. */
export interface KeywardSync {
  /** Where this instance stands; `stale` while the store is unreachable (serving the last snapshot). */
  status(): SyncStatus;
  /** Reads the store now (keyring document and revocations) and applies what changed. Never throws. */
  refresh(): Promise<void>;
  /**
   * Calls `listener` after each change this instance applies (a new keyring generation, a
   * revocation), whether it came from this instance, an announcement or a poll. Returns an
   * unsubscribe function. Listeners run synchronously; an exception in one is ignored.
   *
   * @example
   * ```ts
   * const off = kw.sync.onApplied((change) => {
   *   if (change.kind === 'keyring') console.log('now at generation', change.generation)
   * })
   * ```
   */
  onApplied(listener: (change: SyncChange) => void): () => void;
}

/** The rotation scheduler of a {@link KeywardCore} (started unless `scheduler: false`). */
export interface KeywardScheduler {
  /** Runs the rotation plan once now, under the store lock. Never throws; see {@link RotationTickResult}. */
  tick(): Promise<RotationTickResult>;
  /** True while periodic runs are on. */
  readonly running: boolean;
  /**
   * This instance's clock minus the store's (`Store.time`), in ms, as last measured by a run;
   * `undefined` before the first run or when the store cannot tell its time.
   */
  readonly clockOffsetMs: number | undefined;
  /**
   * True while the last measured offset exceeds the policy's `clockSkew`: runs then neither
   * generate, activate nor retire keys (health `clock:offset` warns).
   */
  readonly clockUnsafe: boolean;
}

/** The instances registered in the store (heartbeats), see {@link KeywardCore.instances}. */
export interface KeywardInstances {
  /** This instance's id in `instances/<id>`, or `undefined` when its heartbeat is off. */
  readonly id: string | undefined;
  /**
   * Lists every registered instance (one `list` of `instances/`, O(instances)) with its state
   * against the store's keyring generation: `current`, `behind` or `stale`.
   *
   * @example
   * ```ts
   * const { generation, counts } = await kw.instances.list()
   * ```
   */
  list(): Promise<InstancesReport>;
  /** Writes this instance's heartbeat now (no-op when off). Never throws. */
  beat(): Promise<void>;
}

/**
 * The keyring part of a keyward instance, without the services built on it (sessions, API
 * keys, secrets). Services take it as their dependency; users get a {@link Keyward}.
 */
export interface KeywardCore {
  readonly store: Store;
  readonly policy: RotationPolicy;
  readonly jwt: KeywardJwt;
  readonly keys: KeywardKeys;
  readonly revocations: KeywardRevocations;
  readonly sync: KeywardSync;
  /** The rotation scheduler. */
  readonly scheduler: KeywardScheduler;
  /** Instance heartbeats: what every instance in the store has applied (`instanceHeartbeatMs`). */
  readonly instances: KeywardInstances;
  readonly logger: KeywardLogger;
  /** The audit log (hash-chained events; pino JSON to stdout by default). */
  readonly audit: AuditLog;
  /** Prometheus metrics. */
  readonly metrics: KeywardMetrics;
  /** Alerts, when the `alerts` option is set (evaluated on a timer; `evaluate()` runs it now). */
  readonly alerts: Alerts | undefined;
  /** Clock (epoch ms) every part uses. */
  readonly now: () => number;
  /** Options the instance was created with (issuer, audience, token lifetime…), without the master keys and JWT secret. */
  readonly options: Readonly<Omit<KeywardOptions, 'masterKey' | 'previousMasterKeys' | 'jwtSecret'>> & {
    readonly accessTokenTtlSec: number;
  };
  /**
   * The `iss` of the tokens this instance issues and the `issuer` of its discovery documents: the
   * `issuer` option, else the default given to {@link KeywardCore.setDefaultIssuer}, else `undefined`.
   */
  issuer(): string | undefined;
  /**
   * Sets the issuer used while the `issuer` option is unset: the app's external origin. The
   * examples call it with the address they listen on (`http://127.0.0.1:3000`). Tokens then carry
   * it as `iss` and the discovery documents advertise it, but verification does not require it
   * (instances behind one load balancer would each derive their own): configure `issuer`
   * (`KEYWARD_ISSUER`) in production and pin it downstream. No effect when `issuer` is configured.
   *
   * @throws KeywardError `config_invalid` unless `url` is an `http:` / `https:` URL without query or fragment.
   */
  setDefaultIssuer(url: string): void;
  /** Registers a function to run on close (services stop their timers and flush here). */
  onClose(fn: () => Promise<void> | void): void;
  /** Stops sync and closes the store if keyward created it. Idempotent. */
  close(): Promise<void>;
}

const silentLogger: KeywardLogger = { info() {}, warn() {}, error() {} };

/** The connection part of the Redis store options: one of `redisUrl`, `redisCluster`, `redisSentinels`. */
function redisConnection(options: KeywardOptions): RedisStoreOptions {
  const given = (['redisUrl', 'redisCluster', 'redisSentinels'] as const).filter((k) => options[k]);
  if (given.length > 1) throw new KeywardError('config_invalid', `give only one of ${given.join(', ')}`);
  if (options.redisCluster) return { cluster: { nodes: [...options.redisCluster] } };
  if (options.redisSentinels) {
    if (!options.redisSentinelName)
      throw new KeywardError('config_invalid', 'redisSentinels needs redisSentinelName');
    return { sentinels: { nodes: [...options.redisSentinels], name: options.redisSentinelName } };
  }
  return options.redisUrl ? { url: options.redisUrl } : {};
}

/**
 * Creates the keyring part of keyward ({@link KeywardCore}): master key, keyring bootstrap, sync,
 * the JWT hot path. {@link createKeyward} builds the services on top of it.
 *
 * @example
 * ```ts
 * const core = await createKeywardCore({ store: createMemoryStore(), masterKey, logger: false })
 * ```
 */
export async function createKeywardCore(options: KeywardOptions = {}): Promise<KeywardCore> {
  const now = options.now ?? Date.now;
  const logger: KeywardLogger =
    options.logger === false ? silentLogger : (options.logger ?? pino({ name: 'keyward', level: 'info' }));
  const signingAlg = normalizeSigningAlgorithm(options.signingAlg ?? 'ES256', 'signingAlg');
  const policy = resolveRotationPolicy({ ...options.rotation, signingAlg });
  const accessTokenTtlSec = options.accessTokenTtlSec ?? Math.min(900, Math.floor(policy.maxTokenTtl / 1000));
  if (
    !Number.isFinite(accessTokenTtlSec) ||
    accessTokenTtlSec <= 0 ||
    accessTokenTtlSec * 1000 > policy.maxTokenTtl
  ) {
    throw new KeywardError(
      'config_invalid',
      `accessTokenTtlSec (${accessTokenTtlSec}) must be positive and at most rotation.maxTokenTtl (${policy.maxTokenTtl / 1000}s)`,
    );
  }
  if (options.issuer !== undefined && (typeof options.issuer !== 'string' || options.issuer.length === 0))
    throw new KeywardError('config_invalid', 'issuer must be a non-empty string', {
      details: { option: 'issuer' },
    });
  if (
    options.clientId !== undefined &&
    (typeof options.clientId !== 'string' || options.clientId.length === 0 || options.clientId.length > 256)
  )
    throw new KeywardError(
      'config_invalid',
      'clientId must be a non-empty string of at most 256 characters',
      {
        details: { option: 'clientId' },
      },
    );
  const heartbeatMs = resolveHeartbeatMs(options.instanceHeartbeatMs);
  let defaultIssuer: string | undefined;
  const dir = options.dir ?? './.keyward';
  const loaded = loadMasterKey({
    ...(options.masterKey ? { masterKey: options.masterKey } : {}),
    ...(options.previousMasterKeys ? { previousMasterKeys: options.previousMasterKeys } : {}),
    dir,
    warn: (message) => logger.warn(message),
    deferGenerated: true,
  });
  const previousMasters = loaded.previous;
  let master = loaded.key;
  const ownsStore = !options.store;
  const store =
    options.store ??
    (options.redisUrl || options.redisCluster || options.redisSentinels
      ? createRedisStore({
          ...redisConnection(options),
          ...(options.redisPrefix ? { prefix: options.redisPrefix } : {}),
          ...(options.storeTimeoutMs !== undefined ? { commandTimeoutMs: options.storeTimeoutMs } : {}),
        })
      : options.databaseUrl
        ? createPostgresStore({
            connectionString: options.databaseUrl,
            ...(options.storeTimeoutMs !== undefined ? { queryTimeoutMs: options.storeTimeoutMs } : {}),
          })
        : createSqliteStore({ path: join(dir, 'keyward.db') }));
  if (ownsStore && options.redisUrl && options.databaseUrl)
    logger.warn('both REDIS_URL and DATABASE_URL are set: keyward uses Redis and ignores DATABASE_URL');

  try {
    const legacy: UnsealedKey[] = [];
    if (options.jwtSecret) {
      legacy.push(await legacySigningKey(options.jwtSecret, options.legacySigning === true, now()));
      legacy.push(await legacyEncryptionKey(options.jwtSecret, now()));
      legacy.push(await legacyDataKey(options.jwtSecret, now()));
    } else if (options.legacySigning) {
      throw new KeywardError('config_invalid', 'legacySigning needs jwtSecret (JWT_SECRET)');
    }
    const preferredSigner = options.legacySigning ? legacy[0]?.record.kid : undefined;
    // A freshly generated dev key can open no existing keyring: check the store before writing it.
    if (loaded.commit) {
      await refuseForeignKeyring(store, dir);
      master = loaded.commit();
    }
    const repo = new KeyringRepository(store, [master, ...previousMasters], now);
    let keyring = new Keyring(legacy, 0);
    const unsealed = new Map<string, { sealed: string; material: KeyMaterial }>();
    const listeners = new Set<(change: SyncChange) => void>();
    const notify = (change: SyncChange) => {
      for (const listener of [...listeners]) {
        try {
          listener(change);
        } catch {
          // a listener's failure must not break sync
        }
      }
    };
    const swap = (doc: KeyringDocument) => {
      if (doc.generation < keyring.generation) return;
      const advanced = doc.generation > keyring.generation;
      keyring = new Keyring([...repo.unseal(doc, unsealed), ...legacy], doc.generation, {
        previous: keyring,
        retained: destroyedRecords(doc),
        ...(preferredSigner ? { preferredSigner } : {}),
      });
      repo.hold(doc);
      if (advanced) notify({ kind: 'keyring', generation: doc.generation });
    };
    // Revocations outlive their tokens by the verifiers' clock tolerance, which accepts a token that
    // long after its exp; a subject's not-before lasts until every token it can revoke has expired.
    const revocationGrace = (options.clockToleranceSec ?? 60) * 1000;
    const subjectRetain = policy.maxTokenTtl + policy.clockSkew;
    const revocations = new RevocationSet({
      clockSkewMs: policy.clockSkew,
      graceMs: revocationGrace,
      subjectRetainMs: subjectRetain,
    });
    const lookup = {
      verificationKey: (kid: string) => keyring.verificationKey(kid),
      signingKey: () => keyring.signingKey(),
      kidlessKey: () => keyring.kidlessKey(),
    };
    const verifier = createJwtVerifier({
      keys: lookup,
      revocations,
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
      ...(options.clockToleranceSec !== undefined ? { clockToleranceSec: options.clockToleranceSec } : {}),
      ...(options.verifyCache !== undefined ? { cache: options.verifyCache } : {}),
      now,
    });
    const audit: AuditLog = isAuditLog(options.audit)
      ? options.audit
      : createAuditLog({ now, ...(options.audit === false ? { sinks: [] } : (options.audit ?? {})) });
    const metrics = options.metrics ?? createKeywardMetrics();
    const alerts = options.alerts ? createAlerts({ now, ...options.alerts }) : undefined;
    metrics.observeAudit(audit);
    const operator = { type: 'operator' as const };
    const rotationJob = { type: 'scheduler' as const, id: 'rotation' };
    const service = new KeyService(
      repo,
      policy,
      {
        applied(doc) {
          swap(doc);
          metrics.observeKeys(keyring.records());
        },
        event(event, by) {
          const actor = by === 'scheduler' ? rotationJob : operator;
          if (event.type === 'key.generated') {
            const { kid, use, alg } = event.record;
            audit.emit({ type: 'key.generated', kid, use, alg, actor });
          } else if (event.type === 'key.activated') {
            audit.emit({ type: 'key.activated', kid: event.kid, use: event.use, actor });
          } else if (event.type === 'key.rotated') {
            metrics.recordRotation(event.rotationType);
            if (event.unpublished) metrics.recordUnpublishedActivation(event.rotationType);
            audit.emit({
              type: 'key.rotated',
              kid: event.kid,
              use: event.use,
              rotationType: event.rotationType,
              ...(event.previousKid ? { previousKid: event.previousKid } : {}),
              ...(event.reason ? { reason: event.reason } : {}),
              ...(event.unpublished ? { unpublished: true } : {}),
              actor,
            });
          } else if (event.type === 'key.retired') {
            audit.emit({ type: 'key.retired', kid: event.kid, use: event.use, actor });
          } else if (event.type === 'key.destroyed') {
            audit.emit({ type: 'key.destroyed', kid: event.kid, use: event.use, actor });
          } else if (event.type === 'key.imported') {
            // kid, alg and state only: never the material or where it came from.
            audit.emit({ type: 'key.imported', kid: event.kid, alg: event.alg, state: event.state, actor });
          } else {
            metrics.recordRevocation('key');
            audit.emit({ type: 'key.revoked', kid: event.kid, reason: event.reason, actor });
          }
        },
      },
      now,
    );
    await service.bootstrap();
    await revocations.load(store, now());

    let lastSyncLagMs: number | undefined;
    const sync = new KeyringSync({
      store,
      revocations,
      generation: () => keyring.generation,
      parseKeyring: (raw) => repo.parse(raw),
      reloadKeyring: async (doc) => {
        if (doc) swap(doc);
      },
      pollIntervalMs: options.syncIntervalMs ?? 1000,
      now,
      onError: (error) => logger.warn({ code: error.code }, `keyward sync: ${error.message}`),
      onApplied: (_kind, lagMs) => {
        if (lagMs !== undefined) lastSyncLagMs = lagMs;
        if (lagMs !== undefined) metrics.recordSyncLag(lagMs);
        if (lagMs !== undefined) alerts?.recordSyncLag(lagMs);
      },
      onRevocations: notify,
      // An instance that holds a keyring never makes another: when the store lost it, sync puts
      // the held one back, and a keyring of another lineage is never adopted (health fails).
      republishKeyring: (expected) => repo.republish(expected),
      sameLineage: (doc) => {
        const held = repo.held;
        return held === undefined || sameLineage(held, doc);
      },
      onKeyringProblem: (problem) => {
        if (problem === 'lost')
          logger.error('keyward sync: the store lost the keyring; re-publishing the one this instance holds');
        else if (problem === 'republished')
          logger.warn('keyward sync: the keyring was re-published after the store lost it');
        else if (problem === 'foreign')
          logger.error(
            'keyward sync: the store holds a keyring of another lineage; not adopting it, serving the held one (see the runbook)',
          );
        else logger.info("keyward sync: the store holds this instance's keyring again");
      },
    });
    await sync.start();

    const scheduler = createRotationScheduler(
      {
        store,
        service,
        now,
        clockSkewMs: policy.clockSkew,
        onClockOffset(offsetMs) {
          metrics.recordClockOffset(offsetMs);
          if (Math.abs(offsetMs) > policy.clockSkew)
            logger.warn(
              { offsetMs },
              `keyward scheduler: this clock is ${offsetMs} ms off the store's (clockSkew ${policy.clockSkew} ms); no key is activated or retired`,
            );
        },
        onError(error) {
          metrics.recordRotationFailure(error.code);
          alerts?.recordRotationFailure();
          logger.error({ code: error.code }, `keyward scheduled rotation failed: ${error.message}`);
        },
      },
      options.scheduler === false ? {} : (options.scheduler ?? {}),
    );
    if (options.scheduler !== false) scheduler.start();

    // The heartbeat has its own timer: never on a request path, and a slow store only delays it.
    let heartbeat: InstanceHeartbeat | undefined;
    if (heartbeatMs !== false) {
      heartbeat = createInstanceHeartbeat({
        store,
        intervalMs: heartbeatMs,
        now,
        source: {
          keyringGeneration: () => keyring.generation,
          revocationGeneration: () => sync.status().revocationGeneration,
          clockOffsetMs: () => scheduler.clockOffsetMs,
          syncLagMs: () => lastSyncLagMs,
          syncStale: () => sync.status().stale,
        },
        onListed: (report) => metrics.observeInstances?.(report.counts),
        onError: (error) => logger.warn({ code: error.code }, `keyward heartbeat: ${error.message}`),
      });
      await heartbeat.start();
      // A new keyring generation is announced at once, so `keyward instances` and health do not
      // report a synced instance as behind until its next interval.
      const beatNow = heartbeat.beat;
      listeners.add((change) => {
        if (change.kind === 'keyring') void beatNow();
      });
    }

    const applyRevocation = (event: RevocationEvent, generation: number) => {
      if (revocations.apply(event, generation)) notify({ kind: 'revocation', revocation: event });
    };
    // The latency histogram samples one verification in 16: timing every call would cost more
    // than a cache hit itself.
    let sample = 0;
    const externalKids = (options.trustedIssuers?.length ?? 0) > 0;
    // No closure or bigint on the untimed 15 of 16 calls: this wrapper is on every request.
    const elapsedNs = (started: bigint) => Number(process.hrtime.bigint() - started);
    const verify = (token: string, overrides?: JwtVerifyOverrides) => {
      const started = (++sample & 15) === 0 ? process.hrtime.bigint() : undefined;
      try {
        const verified = verifier.verify(token, overrides);
        const ns = started === undefined ? undefined : elapsedNs(started);
        metrics.recordVerify(verified.kid, ns);
        alerts?.recordVerify(true, ns === undefined ? undefined : ns / 1e6);
        return verified;
      } catch (err) {
        // With trusted issuers, an unknown kid may be an external token: the authenticator then
        // hands it to the issuer verifier, which counts the outcome (createKeyward's `issuers`).
        if (externalKids && err instanceof KeywardError && err.details?.reason === 'kid_unknown') throw err;
        const ns = started === undefined ? undefined : elapsedNs(started);
        metrics.recordReject(err instanceof KeywardError ? err.code : 'internal_error');
        alerts?.recordVerify(false, ns === undefined ? undefined : ns / 1e6);
        throw err;
      }
    };
    let alertTimer: NodeJS.Timeout | undefined;
    if (alerts) {
      alertTimer = setInterval(
        () => alerts.evaluate(),
        Math.max(1000, Math.floor((options.alerts?.windowMs ?? 60_000) / 6)),
      );
      alertTimer.unref();
    }
    let closed = false;
    const closers: Array<() => Promise<void> | void> = [];
    return {
      store,
      policy,
      logger,
      audit,
      metrics,
      alerts,
      now,
      options: publicOptions(options, accessTokenTtlSec),
      issuer: () => options.issuer ?? defaultIssuer,
      setDefaultIssuer(url) {
        defaultIssuer = parseIssuerUrl(url);
      },
      onClose(fn) {
        closers.push(fn);
      },
      jwt: {
        sign(claims, signOptions = {}) {
          const ttl = signOptions.expiresInSec ?? accessTokenTtlSec;
          if (!Number.isFinite(ttl) || ttl <= 0 || ttl * 1000 > policy.maxTokenTtl) {
            throw new KeywardError(
              'config_invalid',
              `expiresInSec (${ttl}) must be positive and at most the policy's maxTokenTtl (${policy.maxTokenTtl / 1000}s), so no token outlives its key`,
            );
          }
          let iat = Math.floor(now() / 1000);
          // iat has whole seconds, and a subject's not-before revokes tokens issued in its second;
          // a token issued after "logout everywhere" in that same second is dated one second on.
          const notBefore =
            typeof claims.sub === 'string' ? revocations.subjectNotBefore(claims.sub) : undefined;
          if (notBefore !== undefined && iat * 1000 <= notBefore) iat = Math.floor(notBefore / 1000) + 1;
          // Within the clock skew after the not-before, tokens are revoked unless they say their
          // issuer knew it (a token minted by an instance whose clock runs ahead does not).
          const acknowledges = notBefore !== undefined && iat * 1000 <= notBefore + policy.clockSkew;
          const key = keyring.signingKey();
          // A token never outlives its key's window: with a snapshot that already knows the signer
          // is retiring, exp is clamped to verifyUntil (refused when nothing would be left).
          const until = keyring.verificationKey(key.kid)?.verifyUntil;
          const exp = until === undefined ? iat + ttl : Math.min(iat + ttl, Math.floor(until / 1000));
          if (exp <= iat)
            throw new KeywardError('key_state_invalid', 'the signing key is past its verification window', {
              details: { kid: key.kid },
            });
          const iss = options.issuer ?? defaultIssuer;
          const payload: Record<string, unknown> = {
            ...(iss ? { iss } : {}),
            ...(options.audience ? { aud: options.audience } : {}),
            ...(options.clientId ? { client_id: options.clientId } : {}),
            ...claims,
            iat,
            exp,
          };
          if (acknowledges) payload[SUBJECT_ACK_CLAIM] = notBefore;
          else if (SUBJECT_ACK_CLAIM in payload) delete payload[SUBJECT_ACK_CLAIM]; // never trust the caller's
          if (payload.jti === undefined) payload.jti = randomBytes(16).toString('base64url');
          return signJwt(key, payload, { typ: signOptions.typ ?? 'at+jwt' });
        },
        verify,
        encrypt: (claims, encOptions = {}) =>
          encryptJwt(keyring.encryptionKey(), claims, {
            expiresInSec: encOptions.expiresInSec ?? accessTokenTtlSec,
            now,
          }),
        decrypt: (token) =>
          decryptJwt(token, (kid) => keyring.decryptionKeys(kid), {
            now,
            ...(options.clockToleranceSec !== undefined
              ? { clockToleranceSec: options.clockToleranceSec }
              : {}),
          }),
      },
      keys: {
        jwks: () => keyring.jwks(),
        list: () => keyring.records(),
        snapshot: () => keyring,
        rotate: (rotateOptions) => service.rotate(rotateOptions),
        retireDataKey: (kid, remaining) => service.retireDataKey(kid, remaining),
        destroyDataKey: (kid) => service.destroyDataKey(kid),
        import: (importOptions) =>
          service.import(importOptions, { reservedKids: legacy.map((k) => k.record.kid) }),
        // Cache hits re-check the key's state in the current snapshot: no cache walk needed.
        revoke: (kid, reason) => service.revoke(kid, reason),
        async rekey() {
          let result: RekeyResult;
          try {
            result = await repo.rekey();
          } catch (err) {
            if (err instanceof KeywardError)
              audit.emit({
                type: 'key.rekeyed',
                outcome: 'failure',
                masterKeyId: master.id,
                code: err.code,
                actor: operator,
              });
            throw err;
          }
          if (result.changed) {
            swap(result.doc);
            audit.emit({
              type: 'key.rekeyed',
              previousMasterKeyId: result.previousMasterKeyId,
              masterKeyId: result.masterKeyId,
              keys: result.doc.keys.length,
              generation: result.doc.generation,
              actor: operator,
            });
          }
          return result;
        },
      },
      revocations: {
        // The store first: if it is unreachable the call fails and nothing changes locally, so no
        // instance ever holds a revocation the others cannot learn.
        async revokeToken(jti, expiresAt) {
          const event = { type: 'revoke-jti' as const, jti, until: expiresAt };
          applyRevocation(event, await persistRevocation(store, event, now(), { graceMs: revocationGrace }));
          metrics.recordRevocation('token');
        },
        async revokeSubject(sub) {
          const notBefore = now();
          const event = { type: 'revoke-subject' as const, sub, notBefore, until: notBefore + subjectRetain };
          applyRevocation(event, await persistRevocation(store, event, now(), { graceMs: revocationGrace }));
          metrics.recordRevocation('subject');
        },
      },
      sync: {
        status: () => sync.status(),
        refresh: () => sync.poll({ full: true }),
        onApplied(listener) {
          listeners.add(listener);
          return () => void listeners.delete(listener);
        },
      },
      scheduler: {
        tick: () => scheduler.tick(),
        get running() {
          return scheduler.running;
        },
        get clockOffsetMs() {
          return scheduler.clockOffsetMs;
        },
        get clockUnsafe() {
          return scheduler.clockUnsafe;
        },
      },
      instances: {
        id: heartbeat?.id,
        list: () => listInstances(store, { now }),
        beat: async () => heartbeat?.beat(),
      },
      async close() {
        if (closed) return;
        closed = true;
        if (alertTimer) clearInterval(alertTimer);
        await heartbeat?.stop();
        await scheduler.stop();
        for (const fn of closers.reverse()) await fn();
        await sync.stop();
        await audit.close();
        await alerts?.flush();
        if (ownsStore) await store.close();
      },
    };
  } catch (err) {
    if (ownsStore) await store.close().catch(() => undefined);
    throw err;
  }
}

/**
 * No master key is configured and none is in `<dir>/master.key`: refuses (before anything is
 * written) a store that already holds a keyring, which a newly generated key could never open.
 */
async function refuseForeignKeyring(store: Store, dir: string): Promise<void> {
  const raw = await store.get(KEYRING_KEY);
  if (raw === null) return;
  let sealedBy: unknown;
  try {
    sealedBy = (JSON.parse(raw) as { masterKeyId?: unknown } | null)?.masterKeyId;
  } catch {
    sealedBy = undefined;
  }
  const id = typeof sealedBy === 'string' ? sealedBy.slice(0, 64).replace(/[^\x20-\x7e]/g, '') : 'unknown';
  throw new KeywardError(
    'master_key_mismatch',
    `no master key is configured (KEYWARD_MASTER_KEY unset, no ${MASTER_KEY_FILE} in ${dir}) but the store holds a keyring sealed by master key ${id}: set KEYWARD_MASTER_KEY to that key (no ${MASTER_KEY_FILE} was written)`,
    { details: { masterKeyId: id, configured: 'none' } },
  );
}

function isAuditLog(value: unknown): value is AuditLog {
  return typeof value === 'object' && value !== null && typeof (value as AuditLog).emit === 'function';
}

/** An issuer URL for {@link KeywardCore.setDefaultIssuer}: http(s), no query or fragment, no trailing slash. */
function parseIssuerUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' && url.length <= 2048 ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
    parsed.search !== '' ||
    parsed.hash !== '' ||
    parsed.username !== '' ||
    parsed.password !== ''
  ) {
    throw new KeywardError(
      'config_invalid',
      'the default issuer must be an http(s) URL without query or fragment',
      {
        details: { option: 'defaultIssuer' },
      },
    );
  }
  return parsed.href.replace(/\/+$/, '');
}

function publicOptions(options: KeywardOptions, accessTokenTtlSec: number) {
  const { masterKey: _masterKey, previousMasterKeys: _previous, jwtSecret: _jwtSecret, ...rest } = options;
  return Object.freeze({ ...rest, accessTokenTtlSec });
}
