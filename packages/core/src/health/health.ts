import type { KeywardCore } from '../core.js';
import type { DataKeyRewrapStatus } from '../data/compromise.js';
import { signingStandby } from '../keys/lifecycle.js';
import type { KeyRecord, KeyUse } from '../keys/types.js';
import type { KeyringProblem } from '../sync/sync.js';
import type { HealthCheck, HealthReport, HealthStatus } from './types.js';

/**
 * Options of {@link createHealth}.
 *
 * @example
 * ```ts
 * const health = createHealth(core, { version: '1.4.0', pingTimeoutMs: 500 })
 * ```
 */
export interface HealthOptions {
  /** `version` of the report (your app's or keyward's). */
  version?: string;
  /** Longest wait for the store's ping before it counts as unreachable. Default 2000 ms. */
  pingTimeoutMs?: number;
  /** Progress of the rewrap of revoked data keys (`kw.dataRewrap.status`), shown as `data:rewrap`. */
  dataKeyRewrap?: () => Promise<DataKeyRewrapStatus[]>;
}

/**
 * Options of one health call.
 *
 * @example
 * ```ts
 * const liveness = await health({ ready: false }) // no I/O
 * ```
 */
export interface HealthCallOptions {
  /**
   * `true` (default): a readiness report that pings the store. `false`: no I/O at all, the store
   * check comes from the last sync contact (for frequent probes).
   */
  ready?: boolean;
}

const LINEAGE_OUTPUT: Record<KeyringProblem, string> = {
  lost: 'store lost the keyring; re-publishing the one this instance holds',
  republished: 'store lost the keyring; re-published',
  foreign: 'keyring of another lineage in the store',
};

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };
const worst = (statuses: HealthStatus[]): HealthStatus =>
  statuses.reduce<HealthStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'pass');

/**
 * Creates the `application/health+json` report (draft-inadarei-api-health-check) of a keyward
 * instance, with these checks:
 *
 * - `keys:age` — one entry per configured use: `fail` without an active key, `warn` when the
 *   active key is past its rotation period (the scheduler is not running or failing), and for `sig`
 *   `warn` while no published standby signing key exists (a rotation or revocation now would sign
 *   with a key that verifiers caching the JWKS have not seen);
 * - `store:responseTime` — the ping latency; `fail` when unreachable;
 * - `sync:generation` — the keyring generation held; `warn` while the last contact failed (store
 *   unreachable, or a stored keyring sealed by a master key this instance does not hold).
 * - `keyring:lineage` — `fail` while the store does not hold this instance's keyring: it lost it
 *   (re-published, until a later read finds it back) or holds one of another lineage;
 * - `clock:offset` — this clock minus the store's, in seconds, as the scheduler last measured it;
 *   `warn` beyond the policy's `clockSkew` (the scheduler then activates and retires nothing).
 * - `instances` — readiness only: the instances registered in the store (heartbeats) as
 *   `observedValue`; `warn` while any live one is behind the store's keyring generation (never
 *   `fail`: another instance being behind does not make this one unready), stale ones are named in
 *   `output`;
 * - `data:rewrap` — only while a revoked data key still has material: `warn`, the records still
 *   to rewrap as `observedValue` (readiness only; a liveness report names the key without counts).
 *
 * The overall status is the worst check, except that an unreachable store only makes it `warn`
 * while the keyring snapshot can still sign: verification never touches the store (fail static).
 *
 * @example
 * ```ts
 * const health = createHealth(core, { version: '1.4.0' })
 * const report = await health()
 * res.writeHead(report.status === 'fail' ? 503 : 200, { 'content-type': 'application/health+json' })
 * ```
 */
export function createHealth(
  core: KeywardCore,
  options: HealthOptions = {},
): (call?: HealthCallOptions) => Promise<HealthReport> {
  const pingTimeoutMs = options.pingTimeoutMs ?? 2000;
  const rotateEvery: Record<KeyUse, number> = {
    sig: core.policy.sigRotateEvery,
    enc: core.policy.encRotateEvery,
    data: core.policy.dataRotateEvery,
  };

  function keyChecks(time: string): HealthCheck[] {
    const records = core.keys.list();
    return core.policy.uses.map((use): HealthCheck => {
      const active = records.filter((r) => r.use === use && r.state === 'active');
      const key = active.at(-1);
      if (!key) {
        return {
          componentId: use,
          componentType: 'key',
          status: 'fail',
          time,
          output: `no active ${use} key`,
        };
      }
      const age = core.now() - (key.activatedAt ?? key.createdAt);
      const overdue = key.origin !== 'legacy' && age > rotateEvery[use];
      // Signing keeps a published standby, so a rotation or revocation never signs with a key that
      // verifiers caching the JWKS have not seen; warn while there is none (jwksMaxAge after it is made).
      const noStandby =
        use === 'sig' &&
        !signingStandby(
          records.filter((r) => r.origin !== 'legacy'),
          core.policy,
          core.now(),
        )?.published;
      const output = [
        ...(overdue ? [`active ${use} key is past its rotation period`] : []),
        ...(noStandby
          ? [
              'no published standby signing key: a rotation or revocation now would sign with a key not yet in cached JWKS',
            ]
          : []),
      ].join('; ');
      return {
        componentId: key.kid,
        componentType: `key:${use}`,
        status: overdue || noStandby ? 'warn' : 'pass',
        observedValue: Math.floor(age / 1000),
        observedUnit: 's',
        time,
        ...(output ? { output } : {}),
      };
    });
  }

  async function storeCheck(time: string, ping: boolean): Promise<HealthCheck> {
    const base = { componentId: core.store.driver, componentType: 'datastore', time };
    if (!ping) {
      const s = core.sync.status();
      // A keyring this instance cannot open is reported by the sync check, not as an outage.
      const stale = s.stale && s.lastErrorCode !== 'master_key_mismatch';
      return {
        ...base,
        status: stale ? 'fail' : 'pass',
        ...(stale ? { output: 'store unreachable at last sync' } : {}),
      };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const latency = await Promise.race([
        core.store.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('ping timed out')), pingTimeoutMs);
          timer.unref();
        }),
      ]);
      return { ...base, status: 'pass', observedValue: Math.round(latency * 100) / 100, observedUnit: 'ms' };
    } catch {
      // The error text may carry a connection string: report a fixed message.
      return { ...base, status: 'fail', output: 'store unreachable' };
    } finally {
      clearTimeout(timer);
    }
  }

  function syncCheck(time: string): HealthCheck {
    const s = core.sync.status();
    return {
      componentType: 'component',
      status: s.stale ? 'warn' : 'pass',
      observedValue: s.generation,
      time,
      ...(s.stale
        ? {
            output:
              s.lastErrorCode === 'master_key_mismatch'
                ? 'serving the last keyring snapshot; the stored keyring is sealed by a master key this instance does not hold (master_key_mismatch)'
                : 'serving the last keyring snapshot; store unreachable',
          }
        : {}),
    };
  }

  function lineageCheck(time: string): HealthCheck {
    const problem = core.sync.status().keyringProblem;
    return {
      componentType: 'component',
      status: problem ? 'fail' : 'pass',
      time,
      ...(problem ? { output: LINEAGE_OUTPUT[problem] } : {}),
    };
  }

  function clockCheck(time: string): HealthCheck {
    const offset = core.scheduler.clockOffsetMs;
    const unsafe = core.scheduler.clockUnsafe;
    return {
      componentType: 'system',
      status: unsafe ? 'warn' : 'pass',
      ...(offset !== undefined ? { observedValue: offset / 1000, observedUnit: 's' } : {}),
      time,
      ...(unsafe
        ? {
            output: `clock is ${offset! / 1000}s off the store's (clockSkew ${core.policy.clockSkew / 1000}s); keys are not activated or retired`,
          }
        : {}),
    };
  }

  async function instancesCheck(time: string): Promise<HealthCheck> {
    const base = { componentType: 'system', time };
    let report: Awaited<ReturnType<KeywardCore['instances']['list']>>;
    try {
      report = await core.instances.list();
    } catch {
      return { ...base, status: 'warn', output: 'instances unknown: store unreachable' };
    }
    const { behind, stale } = report.counts;
    const output = [
      ...(behind > 0 ? [`${behind} behind keyring generation ${report.generation}`] : []),
      ...(stale > 0 ? [`${stale} stale (no heartbeat for two intervals)`] : []),
    ].join('; ');
    return {
      ...base,
      status: behind > 0 ? 'warn' : 'pass',
      observedValue: report.instances.length,
      observedUnit: 'instances',
      ...(output ? { output } : {}),
    };
  }

  async function rewrapChecks(time: string, ready: boolean): Promise<HealthCheck[]> {
    const revoked = core.keys
      .list()
      .filter((r) => r.use === 'data' && r.state === 'revoked' && r.destroyedAt === undefined);
    if (revoked.length === 0) return [];
    let statuses: DataKeyRewrapStatus[] | undefined;
    if (ready && options.dataKeyRewrap) statuses = await options.dataKeyRewrap().catch(() => undefined);
    return revoked.map((record): HealthCheck => {
      const s = statuses?.find((x) => x.kid === record.kid);
      const progress =
        s === undefined
          ? 'rewrap in progress'
          : s.state === 'settling'
            ? 'rewrap done; material destroyed once every instance has switched'
            : `rewrap in progress: ${s.rewrapped} rewrapped${s.remaining === undefined ? '' : `, ${s.remaining} to go`}`;
      return {
        componentId: record.kid,
        componentType: 'key:data',
        status: 'warn',
        ...(s?.remaining !== undefined ? { observedValue: s.remaining, observedUnit: 'records' } : {}),
        time,
        output: `revoked data key still decrypts: ${progress}`,
      };
    });
  }

  function canSign(records: KeyRecord[]): boolean {
    return records.some((r) => r.use === 'sig' && r.state === 'active');
  }

  return async (call: HealthCallOptions = {}) => {
    const time = new Date(core.now()).toISOString();
    const keys = keyChecks(time);
    const store = await storeCheck(time, call.ready !== false);
    const sync = syncCheck(time);
    const lineage = lineageCheck(time);
    const clock = clockCheck(time);
    const rewrap = await rewrapChecks(time, call.ready !== false);
    const instances = call.ready !== false ? await instancesCheck(time) : undefined;
    const storeWeight: HealthStatus =
      store.status === 'fail' && canSign(core.keys.list()) ? 'warn' : store.status;
    const status = worst([
      ...keys.map((k) => k.status),
      storeWeight,
      sync.status,
      lineage.status,
      clock.status,
      ...rewrap.map((r) => r.status),
      ...(instances ? [instances.status] : []),
    ]);
    return {
      status,
      ...(options.version !== undefined ? { version: options.version } : {}),
      description: 'keyward',
      checks: {
        'keys:age': keys,
        'store:responseTime': [store],
        'sync:generation': [sync],
        'keyring:lineage': [lineage],
        'clock:offset': [clock],
        ...(rewrap.length > 0 ? { 'data:rewrap': rewrap } : {}),
        ...(instances ? { instances: [instances] } : {}),
      },
    };
  };
}
