import type { KeywardCore } from '../core.js';
import { signingStandby } from '../keys/lifecycle.js';
import type { KeyRecord, KeyUse } from '../keys/types.js';
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

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };
const worst = (statuses: HealthStatus[]): HealthStatus =>
  statuses.reduce<HealthStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'pass');

/**
 * Creates the `application/health+json` report (draft-inadarei-api-health-check) of a keyward
 * instance, with three checks:
 *
 * - `keys:age` — one entry per configured use: `fail` without an active key, `warn` when the
 *   active key is past its rotation period (the scheduler is not running or failing), and for `sig`
 *   `warn` while no published standby signing key exists (a rotation or revocation now would sign
 *   with a key that verifiers caching the JWKS have not seen);
 * - `store:responseTime` — the ping latency; `fail` when unreachable;
 * - `sync:generation` — the keyring generation held; `warn` while the last contact failed.
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
      const stale = core.sync.status().stale;
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
      ...(s.stale ? { output: 'serving the last keyring snapshot; store unreachable' } : {}),
    };
  }

  function canSign(records: KeyRecord[]): boolean {
    return records.some((r) => r.use === 'sig' && r.state === 'active');
  }

  return async (call: HealthCallOptions = {}) => {
    const time = new Date(core.now()).toISOString();
    const keys = keyChecks(time);
    const store = await storeCheck(time, call.ready !== false);
    const sync = syncCheck(time);
    const storeWeight: HealthStatus =
      store.status === 'fail' && canSign(core.keys.list()) ? 'warn' : store.status;
    const status = worst([...keys.map((k) => k.status), storeWeight, sync.status]);
    return {
      status,
      ...(options.version !== undefined ? { version: options.version } : {}),
      description: 'keyward',
      checks: { 'keys:age': keys, 'store:responseTime': [store], 'sync:generation': [sync] },
    };
  };
}
