import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { KeywardError } from '../errors.js';
import type { KeyRecord, KeyState, KeyUse } from '../keys/types.js';
import { CollectedHistogram } from './collected-histogram.js';

/**
 * Verify latency buckets in seconds: 5 µs … 100 ms (a cached verify is µs, a cold RSA one ms).
 *
 * @example
 * ```ts
 * new Histogram({ name: 'my_verify_seconds', help: '…', buckets: [...VERIFY_LATENCY_BUCKETS] });
 * ```
 */
export const VERIFY_LATENCY_BUCKETS: readonly number[] = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];
/**
 * Sync lag buckets in seconds: 5 ms … 30 s (target p99 < 50 ms; alert above 5 s).
 *
 * @example
 * ```ts
 * new Histogram({ name: 'my_sync_lag_seconds', help: '…', buckets: [...SYNC_LAG_BUCKETS] });
 * ```
 */
export const SYNC_LAG_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

const KEY_USES: readonly KeyUse[] = ['sig', 'enc', 'data'];
const KEY_STATES: readonly KeyState[] = ['pending', 'active', 'retiring', 'retired', 'revoked'];

/** Options for {@link createKeywardMetrics}. */
export interface KeywardMetricsOptions {
  /** Registry to register in. Default: a new one (not prom-client's global registry). */
  registry?: Registry;
  /** Metric name prefix. Default `keyward_`. */
  prefix?: string;
  /** Clock in epoch ms for key ages (inject in tests). */
  now?: () => number;
}

/** Counters an audit log exposes (see `AuditLog.stats()`). */
export interface AuditStatsSource {
  stats(): { emitted: number; rateLimited: number; scrubbedFields: number; sinkErrors: number };
}

/** keyward's Prometheus metrics. `record…` methods are cheap enough for the request path. */
export interface KeywardMetrics {
  readonly registry: Registry;
  /** Content-Type of {@link KeywardMetrics.text}. */
  readonly contentType: string;
  /** Prometheus text exposition of the registry. */
  text(): Promise<string>;
  /** A JWT verified with `kid`; optional duration in nanoseconds (e.g. from `process.hrtime.bigint()`). */
  recordVerify(kid: string, durationNs?: number): void;
  /** An API key verified; optional duration in nanoseconds. */
  recordApiKeyVerify(durationNs?: number): void;
  /** A credential rejected, by error code; optional duration in nanoseconds. */
  recordReject(code: string, durationNs?: number): void;
  recordIssue(use: string, alg: string): void;
  recordRefresh(): void;
  recordReuseDetected(): void;
  recordRotation(type: 'scheduled' | 'on_demand' | 'emergency'): void;
  /**
   * A signing key started signing without a published standby (not in the JWKS for `jwksMaxAge`):
   * `keyward_unpublished_activations_total`, by rotation type.
   */
  recordUnpublishedActivation(type: 'scheduled' | 'on_demand' | 'emergency'): void;
  /** A scheduled rotation run that failed, by error code (store unreachable, lock lost…). */
  recordRotationFailure(code: string): void;
  recordRevocation(level: 'key' | 'token' | 'family' | 'subject'): void;
  recordSyncLag(lagMs: number): void;
  /** The scheduler's last measured offset of this instance's clock against the store's, in ms (`clock_offset_seconds`). */
  recordClockOffset(offsetMs: number): void;
  /** The current key records; `keys` and `key_age_seconds` are computed from them at scrape time. */
  observeKeys(records: readonly KeyRecord[]): void;
  /** Instances registered in the store by state, from the last heartbeat's listing (`instances` gauge). */
  observeInstances?(counts: Readonly<Record<'current' | 'behind' | 'stale', number>>): void;
  /** Exposes an audit log's counters (events, rate-limited, scrubbed fields, sink errors). */
  observeAudit(source: AuditStatsSource): void;
  /** A login or refresh refused by the brute-force limiter (`rate_limited_total`, by route and limit). */
  recordThrottled?(route: 'login' | 'refresh', limit: 'user' | 'address'): void;
  /** The limiter could not reach the store and counted in memory (`rate_limit_store_errors_total`). */
  recordRateLimitStoreError?(): void;
}

/** A count that is bumped in place: one `Map.get` per event, no `Map.set` once the label is known. */
interface Tally {
  n: number;
}

function increment(map: Map<string, Tally>, key: string): void {
  const tally = map.get(key);
  if (tally === undefined) map.set(key, { n: 1 });
  else tally.n += 1;
}

/**
 * Creates keyward's metrics in a prom-client registry. Hot-path counts are plain numbers read by
 * prom-client `collect` callbacks at scrape time, so a verify costs a few map and array updates.
 *
 * @example
 * ```ts
 * const metrics = createKeywardMetrics();
 * const start = process.hrtime.bigint();
 * const claims = verify(token);
 * metrics.recordVerify(kid, Number(process.hrtime.bigint() - start));
 * app.get('/metrics', async (_req, res) => res.type(metrics.contentType).send(await metrics.text()));
 * ```
 */
export function createKeywardMetrics(options: KeywardMetricsOptions = {}): KeywardMetrics {
  const prefix = options.prefix ?? 'keyward_';
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new KeywardError('config_invalid', 'prefix must match [a-zA-Z_:][a-zA-Z0-9_:]* (or be empty)');
  }
  const registry = options.registry ?? new Registry();
  const now = options.now ?? Date.now;
  const registers = [registry];

  let verifiedJwt = 0;
  let verifiedApiKey = 0;
  const perKid = new Map<string, Tally>();
  const rejected = new Map<string, Tally>();
  let keyRecords: readonly KeyRecord[] = [];
  const auditSources: AuditStatsSource[] = [];

  const latency = new CollectedHistogram(
    `${prefix}verify_duration_seconds`,
    'Credential verification latency in seconds',
    VERIFY_LATENCY_BUCKETS,
  );
  registry.registerMetric(latency.asMetric());
  const observeLatency = (durationNs: number | undefined) => {
    if (durationNs !== undefined) latency.record(durationNs / 1e9);
  };

  new Counter({
    name: `${prefix}tokens_verified_total`,
    help: 'Credentials verified, by kind',
    labelNames: ['via'],
    registers,
    collect() {
      this.reset();
      this.inc({ via: 'jwt' }, verifiedJwt);
      this.inc({ via: 'api_key' }, verifiedApiKey);
    },
  });
  new Counter({
    name: `${prefix}key_verifications_total`,
    help: 'JWTs verified, by signing key id',
    labelNames: ['kid'],
    registers,
    collect() {
      this.reset();
      for (const [kid, { n }] of perKid) this.inc({ kid }, n);
    },
  });
  new Counter({
    name: `${prefix}tokens_rejected_total`,
    help: 'Credentials rejected, by error code',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, { n }] of rejected) this.inc({ reason }, n);
    },
  });
  const issued = new Counter({
    name: `${prefix}tokens_issued_total`,
    help: 'Tokens issued, by key use and algorithm',
    labelNames: ['use', 'alg'],
    registers,
  });
  const refreshes = new Counter({
    name: `${prefix}token_refreshes_total`,
    help: 'Refresh tokens used',
    registers,
  });
  const reuse = new Counter({
    name: `${prefix}token_reuse_detected_total`,
    help: 'Spent refresh tokens presented again (family revoked)',
    registers,
  });
  const throttled = new Counter({
    name: `${prefix}rate_limited_total`,
    help: 'Logins and refreshes refused by the brute-force limiter (429), by route and limit',
    labelNames: ['route', 'limit'],
    registers,
  });
  const rateLimitStoreErrors = new Counter({
    name: `${prefix}rate_limit_store_errors_total`,
    help: "Limiter attempts that could not reach the store and counted in this instance's memory",
    registers,
  });
  const unpublishedActivations = new Counter({
    name: `${prefix}unpublished_activations_total`,
    help: 'Signing keys that started signing before they were in the JWKS for jwksMaxAge, by rotation type',
    labelNames: ['type'],
    registers,
  });
  const rotations = new Counter({
    name: `${prefix}key_rotations_total`,
    help: 'Key rotations, by type',
    labelNames: ['type'],
    registers,
  });
  const rotationFailures = new Counter({
    name: `${prefix}key_rotation_failures_total`,
    help: 'Scheduled rotation runs that failed (store unreachable, lock lost, invalid keyring), by code',
    labelNames: ['code'],
    registers,
  });
  const revocations = new Counter({
    name: `${prefix}revocations_total`,
    help: 'Revocations, by level',
    labelNames: ['level'],
    registers,
  });
  const syncLag = new Histogram({
    name: `${prefix}sync_lag_seconds`,
    help: 'Delay between a keyring change and this instance applying it, in seconds',
    buckets: [...SYNC_LAG_BUCKETS],
    registers,
  });

  new Gauge({
    name: `${prefix}keys`,
    help: 'Keys by use and state',
    labelNames: ['use', 'state'],
    registers,
    collect() {
      this.reset();
      for (const use of KEY_USES) for (const state of KEY_STATES) this.set({ use, state }, 0);
      for (const record of keyRecords) this.inc({ use: record.use, state: record.state });
    },
  });
  new Gauge({
    name: `${prefix}key_age_seconds`,
    help: 'Seconds since each key was created',
    labelNames: ['kid', 'use', 'state'],
    registers,
    collect() {
      this.reset();
      const at = now();
      for (const r of keyRecords)
        this.set({ kid: r.kid, use: r.use, state: r.state }, (at - r.createdAt) / 1000);
    },
  });
  let instanceCounts: Readonly<Record<'current' | 'behind' | 'stale', number>> | undefined;
  new Gauge({
    name: `${prefix}instances`,
    help: 'Instances registered in the store by state (current, behind the keyring generation, stale), as the last heartbeat listed them',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      if (instanceCounts)
        for (const [state, count] of Object.entries(instanceCounts)) this.set({ state }, count);
    },
  });
  const clockOffset = new Gauge({
    name: `${prefix}clock_offset_seconds`,
    help: "This instance's clock minus the store's, in seconds, as last measured by the rotation scheduler",
    registers,
  });
  registerAuditMetrics(prefix, registers, auditSources);

  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    text: () => registry.metrics(),
    recordVerify(kid, durationNs) {
      verifiedJwt += 1;
      increment(perKid, kid);
      observeLatency(durationNs);
    },
    recordApiKeyVerify(durationNs) {
      verifiedApiKey += 1;
      observeLatency(durationNs);
    },
    recordReject(code, durationNs) {
      increment(rejected, code);
      observeLatency(durationNs);
    },
    recordIssue: (use, alg) => issued.inc({ use, alg }),
    recordRefresh: () => refreshes.inc(),
    recordReuseDetected: () => reuse.inc(),
    recordThrottled: (route, limit) => throttled.inc({ route, limit }),
    recordRateLimitStoreError: () => rateLimitStoreErrors.inc(),
    recordRotation: (type) => rotations.inc({ type }),
    recordUnpublishedActivation: (type) => unpublishedActivations.inc({ type }),
    recordRotationFailure: (code) => rotationFailures.inc({ code }),
    recordRevocation: (level) => revocations.inc({ level }),
    recordSyncLag(lagMs) {
      if (Number.isFinite(lagMs) && lagMs >= 0) syncLag.observe(lagMs / 1000);
    },
    recordClockOffset(offsetMs) {
      if (Number.isFinite(offsetMs)) clockOffset.set(offsetMs / 1000);
    },
    observeInstances(counts) {
      instanceCounts = { ...counts };
    },
    observeKeys(records) {
      keyRecords = [...records];
    },
    observeAudit(source) {
      auditSources.push(source);
    },
  };
}

function registerAuditMetrics(prefix: string, registers: Registry[], sources: AuditStatsSource[]): void {
  const sum = (pick: (s: ReturnType<AuditStatsSource['stats']>) => number) =>
    sources.reduce((total, source) => total + pick(source.stats()), 0);
  new Counter({
    name: `${prefix}audit_events_total`,
    help: 'Audit events emitted',
    registers,
    collect() {
      this.reset();
      this.inc(sum((s) => s.emitted));
    },
  });
  new Counter({
    name: `${prefix}audit_dropped_total`,
    help: 'Audit data dropped: rate-limited access.denied events, scrubbed secret-looking fields',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      this.inc(
        { reason: 'rate_limited' },
        sum((s) => s.rateLimited),
      );
      this.inc(
        { reason: 'scrubbed_field' },
        sum((s) => s.scrubbedFields),
      );
    },
  });
  new Counter({
    name: `${prefix}audit_sink_errors_total`,
    help: 'Audit sink writes or flushes that failed',
    registers,
    collect() {
      this.reset();
      this.inc(sum((s) => s.sinkErrors));
    },
  });
}
