import { hostname } from 'node:os';
import { countApiKeysPinnedTo, revokeApiKeysPinnedTo } from '../apikeys/record.js';
import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { storeEntries } from '../store/entries.js';
import type { StoreEntry } from '../store/types.js';
import { createDataCipher, type DataCipher } from './cipher.js';
import {
  type CursorDocument,
  cursorKey,
  destroyableKids,
  holderKey,
  type JobCounts,
  type LockHolder,
  type Outcome,
  type PrefixSetting,
  readCursor,
  retirableKids,
  revokedDataKeys,
  runningElsewhere,
  saveCursor,
  tally,
  validateOptions,
} from './rewrap-state.js';

/** Progress of a {@link RewrapJob}, reported after each batch. */
export interface RewrapProgress {
  /** The prefix being walked. */
  prefix: string;
  /** Records looked at in this run. */
  scanned: number;
  /** Records re-encrypted in this run. */
  rewrapped: number;
  /** Records re-encrypted in the whole pass (every run of it, a killed one's included), by source kid. */
  rewrappedByKid: Record<string, number>;
  /** True on the last report, once every prefix is walked. */
  done: boolean;
}

/** Result of {@link RewrapJob.run}. */
export interface RewrapResult {
  /** Records looked at in this run (a resumed run starts at its saved cursor). */
  scanned: number;
  /** Records re-encrypted in this run. */
  rewrapped: number;
  /** Ciphertexts of the whole pass still not under the active data key, by kid (`unreadable` when no key opens them). */
  remainingByKid: Record<string, number>;
  /** True when this run continued a pass a previous (killed) run had started. */
  resumed: boolean;
  /** The data key everything was rewrapped to. */
  activeKid: string;
  /** Retiring data keys left with no ciphertext, which this run retired. */
  retired: string[];
  /** Revoked data keys left with no ciphertext, whose material this run destroyed (with `destroyRevoked`). */
  destroyed: string[];
  /**
   * Revoked data keys this pass emptied but could not destroy yet: revoked less than `settleMs`
   * before the pass began, so an instance that had not synced might still have written under them.
   * Run again after `settleMs`.
   */
  settling: string[];
  /** API keys revoked because they were hashed under a revoked data key's pepper. */
  apiKeysRevoked: number;
  /** True when `signal` stopped the run between two batches; the cursor is kept and the next run resumes. */
  stopped: boolean;
}

/** Where one kind of record keeps its ciphertext (e.g. `SECRETS_REWRAP_TARGET`, `IDP_REWRAP_TARGET`). */
export interface RewrapTarget {
  /** Store prefixes of these records. */
  prefixes: string[];
  /** The ciphertext inside a record, or `undefined` to skip it. Default: the whole value. */
  extract?: (value: string, key: string) => string | undefined;
  /** The record with its ciphertext replaced. Default: the ciphertext itself. */
  inject?: (value: string, ciphertext: string, key: string) => string;
  /**
   * Upgrades a record's plaintext during the pass (e.g. binds a legacy secret to its owner and
   * name): given the decrypted plaintext and the store key, the new plaintext, or `undefined` to keep
   * it. A record it changes is re-encrypted even when already under the active key. Throwing leaves
   * the record as it is (counted as remaining). Default: none.
   */
  migrate?: (plaintext: Uint8Array, key: string) => Uint8Array | undefined;
  /** True when a record needs no {@link RewrapTarget.migrate} (spares its decryption). Default: always false. */
  migrated?: (value: string, key: string) => boolean;
}

/** Options of {@link createRewrapJob}. */
export interface RewrapJobOptions {
  /** Store prefixes whose records hold ciphertexts. Every prefix holding data-key ciphertext must be listed, or a key could retire under live data. */
  prefixes?: string[];
  /** Several kinds of records in one pass, each with its own extract / inject (instead of `prefixes`, `extract`, `inject`). */
  targets?: RewrapTarget[];
  /** Records per batch (one store page, one cursor save, one audit event per source kid). Default 500, at most 10,000. */
  batchSize?: number;
  /** The ciphertext inside a record, or `undefined` to skip it. Default: the whole value. See {@link jsonField}. */
  extract?: (value: string, key: string) => string | undefined;
  /** The record with its ciphertext replaced. Default: the ciphertext itself. */
  inject?: (value: string, ciphertext: string, key: string) => string;
  /** Upgrades a record's plaintext during the pass; see {@link RewrapTarget.migrate}. */
  migrate?: (plaintext: Uint8Array, key: string) => Uint8Array | undefined;
  /** True when a record needs no `migrate`; see {@link RewrapTarget.migrated}. */
  migrated?: (value: string, key: string) => boolean;
  /** Called after each batch. */
  onProgress?: (progress: RewrapProgress) => void;
  /** Retires a data key. Default: `core.keys.retireDataKey(kid, 0)` (one keyring update, audited as `key.retired`). */
  retire?: (kid: string) => Promise<void>;
  /**
   * Destroy the material of revoked data keys this pass leaves empty (and revoke the API keys
   * hashed under their pepper first). Irreversible, so off by default: only a job whose
   * `targets` cover every record holding data-key ciphertext may set it (the background rewrap
   * of `createKeyward` does). Default `false`.
   */
  destroyRevoked?: boolean;
  /** Destroys a revoked data key's material. Default: `core.keys.destroyDataKey(kid)` (audited as `key.destroyed`). */
  destroy?: (kid: string) => Promise<unknown>;
  /**
   * Counts records that pin a data key but cannot be rewrapped (API keys hashed under its pepper:
   * only their holders know the secret). A key with pinned records is not retired; the count is
   * reported in `remainingByKid`. Default: live API keys under the kid.
   */
  pinned?: (kid: string) => Promise<number>;
  /**
   * Invalidates what pins a *revoked* data key (default: revokes the API keys under its pepper,
   * see `revokeApiKeysPinnedTo`), so that a compromised key's material can be destroyed. Resolves the count.
   */
  invalidatePinned?: (kid: string) => Promise<number>;
  /** Names the saved cursor and the lock, so separate jobs do not share them. Default `data`. */
  jobId?: string;
  /**
   * A retiring key is retired (a revoked one destroyed) only if it was already retiring (revoked)
   * this long before the pass started, so that every instance had switched to the new key (sync
   * lag) and none can still write under it. Default 60,000 ms.
   */
  settleMs?: number;
  /**
   * TTL of the job lock. A heartbeat renews it every third of it while the job runs, so a killed
   * job's lock lapses (and another instance can resume) within this time. Default 15,000 ms.
   */
  lockTtlMs?: number;
  /** Names this process in the lock holder record and in "running elsewhere" errors. Default `<hostname>:<pid>`. */
  instanceId?: string;
  /** Stops the run between two batches (the cursor is kept; the next run resumes). */
  signal?: AbortSignal;
}

/** A resumable re-encryption of stored ciphertexts under the active data key. */
export interface RewrapJob {
  /**
   * Runs (or resumes) the pass. `lock_not_acquired` when another instance runs it (naming that
   * instance and how long it has held the lock); `lock_lost` when the lock was lost mid-run.
   */
  run(): Promise<RewrapResult>;
}

const CAS_ATTEMPTS = 3;

/**
 * Reads and writes the ciphertext in one JSON field of a record, for {@link RewrapJobOptions}.
 *
 * @example
 * ```ts
 * createRewrapJob(core, { prefixes: ['secret:'], ...jsonField('value') })
 * ```
 */
export function jsonField(field: string): Pick<RewrapJobOptions, 'extract' | 'inject'> {
  return {
    extract(value) {
      try {
        const parsed: unknown = JSON.parse(value);
        const found =
          typeof parsed === 'object' && parsed !== null
            ? (parsed as Record<string, unknown>)[field]
            : undefined;
        return typeof found === 'string' ? found : undefined;
      } catch {
        return undefined;
      }
    },
    inject(value, ciphertext) {
      return JSON.stringify({ ...(JSON.parse(value) as Record<string, unknown>), [field]: ciphertext });
    },
  };
}

/**
 * {@link jsonField} for records that carry a format version `v`: `inject` writes `version` (every
 * plaintext a pass writes is in the current format, `migrate` having run on older records), and
 * `migrated` tells the job which records are already in it.
 *
 * @example
 * ```ts
 * createRewrapJob(core, { prefixes: ['secret:'], ...versionedJsonField('value', 2), migrate })
 * ```
 */
export function versionedJsonField(
  field: string,
  version: number,
): Required<Pick<RewrapTarget, 'extract' | 'inject' | 'migrated'>> {
  return {
    extract: jsonField(field).extract!,
    inject(value: string, ciphertext: string): string {
      return JSON.stringify({
        ...(JSON.parse(value) as Record<string, unknown>),
        v: version,
        [field]: ciphertext,
      });
    },
    migrated(value: string): boolean {
      try {
        return (JSON.parse(value) as { v?: unknown } | null)?.v === version;
      } catch {
        return false;
      }
    },
  };
}

/**
 * Creates the rewrap job: after a data-key rotation, walks every record under `prefixes` in
 * batches and re-encrypts what is not under the active data key, keeping each token's original
 * timestamp. Each record is written with compare-and-set, so a concurrent `put` always wins. The
 * cursor is saved in the store after each batch: a killed job resumes where it stopped. One audit
 * event `secret.rewrapped` per batch and source kid (counts and kids only). When the pass leaves no
 * ciphertext under a retiring data key, that key is retired; with `destroyRevoked`, under a revoked
 * (compromised) one, the API keys hashed under its pepper are revoked and its material is destroyed
 * (`key.destroyed`).
 * The lock has a short TTL renewed by a heartbeat, so a killed job can be resumed almost at once.
 *
 * @example
 * ```ts
 * await core.keys.rotate({ use: 'data' })
 * const job = createRewrapJob(core, { prefixes: ['secret:'], ...jsonField('value') })
 * const { rewrapped, remainingByKid, retired } = await job.run()
 * ```
 */
export function createRewrapJob(
  core: Pick<KeywardCore, 'store' | 'keys' | 'now' | 'audit'>,
  options: RewrapJobOptions,
  cipher: DataCipher = createDataCipher(core),
): RewrapJob {
  const settings = validateOptions(options, `${hostname()}:${process.pid}`);
  const { store } = core;
  const retire = options.retire ?? ((kid: string) => core.keys.retireDataKey(kid, 0));
  const destroy = options.destroy ?? ((kid: string) => core.keys.destroyDataKey(kid));
  const pinned = options.pinned ?? ((kid: string) => countApiKeysPinnedTo(core.store, kid));
  const invalidatePinned = options.invalidatePinned ?? ((kid: string) => revokeApiKeysPinnedTo(core, kid));
  const destroyRevoked = options.destroyRevoked === true;

  async function rewrapOne(entry: StoreEntry, target: PrefixSetting): Promise<Outcome> {
    let value = entry.value;
    let ciphertext: string | undefined;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      ciphertext = target.extract(value, entry.key);
      if (ciphertext === undefined) return { kind: 'skip' };
      const { migrate } = target;
      const migrating = migrate !== undefined && !target.migrated(value, entry.key);
      if (!migrating && cipher.isCurrent(ciphertext)) return { kind: 'current' };
      let next: string;
      try {
        const key = entry.key;
        const fresh = migrating
          ? cipher.rewrap(ciphertext, (p) => migrate(p, key))
          : cipher.rewrap(ciphertext);
        if (fresh === ciphertext) return { kind: 'current' };
        next = target.inject(value, fresh, entry.key);
      } catch {
        return { kind: 'remaining', kid: cipher.kidOf(ciphertext) ?? 'unreadable' };
      }
      if (await store.compareAndSet(entry.key, value, next))
        return { kind: 'rewrapped', fromKid: cipher.kidOf(ciphertext) ?? 'unreadable' };
      const latest = await store.get(entry.key);
      if (latest === null) return { kind: 'skip' };
      value = latest;
    }
    return { kind: 'remaining', kid: (ciphertext && cipher.kidOf(ciphertext)) ?? 'unreadable' };
  }

  /** Takes the lock, names the holder, and renews both on a heartbeat until stopped. */
  async function hold() {
    const { jobId, lockTtlMs } = settings;
    const lock = await store.acquireLock(`rewrap:${jobId}`, lockTtlMs);
    if (!lock) throw await runningElsewhere(store, settings, core.now());
    const since = core.now();
    const writeHolder = () => {
      const holder: LockHolder = { instanceId: settings.instanceId, since, until: core.now() + lockTtlMs };
      // Outlives the lock it names (a holder frozen between two writes still gets named); it is
      // only read when the lock is held, and a new holder overwrites it.
      return store.set(holderKey(jobId), JSON.stringify(holder), { ttlMs: 2 * lockTtlMs });
    };
    let lost = false;
    let beating: Promise<unknown> = Promise.resolve();
    await writeHolder().catch(() => undefined);
    const timer = setInterval(
      () => {
        beating = (async () => {
          if (lost) return;
          if (!(await lock.extend(lockTtlMs).catch(() => false))) lost = true;
          else await writeHolder().catch(() => undefined);
        })();
      },
      Math.max(250, Math.floor(lockTtlMs / 3)),
    );
    timer.unref();
    return {
      token: lock.token,
      /** `lock_lost` unless the heartbeat still holds the lock (and it still is ours now). */
      async check(): Promise<void> {
        if (lost || !(await lock.extend(lockTtlMs)))
          throw new KeywardError('lock_lost', `rewrap job "${jobId}" lost its lock`, { details: { jobId } });
      },
      async release(): Promise<void> {
        clearInterval(timer);
        await beating.catch(() => undefined);
        if (await lock.release().catch(() => false)) await store.delete(holderKey(jobId)).catch(() => false);
      },
    };
  }

  return {
    async run() {
      const lock = await hold();
      try {
        const activeKid = core.keys.snapshot().dataKey().kid;
        let apiKeysRevoked = 0;
        // A compromised key's API keys stop verifying at once (their pepper is refused already);
        // revoking them here makes that visible and lets every instance drop its cached copy.
        if (destroyRevoked)
          for (const record of revokedDataKeys(core.keys.snapshot().records()))
            apiKeysRevoked += await invalidatePinned(record.kid);
        const saved = await readCursor(store, settings.jobId);
        const prefixes = settings.prefixes.map((p) => p.prefix);
        const samePrefixes = (doc: CursorDocument) =>
          Array.isArray(doc.prefixes) &&
          doc.prefixes.length === prefixes.length &&
          doc.prefixes.every((p, i) => p === prefixes[i]);
        // Resume only the same pass: same target key and the same prefixes in the same order.
        const previous = saved?.doc?.activeKid === activeKid && samePrefixes(saved.doc) ? saved.doc : null;
        const resumed = previous !== null;
        let doc: CursorDocument = previous
          ? { ...previous, fence: lock.token }
          : {
              v: 1,
              activeKid,
              fence: lock.token,
              startedAt: core.now(),
              prefixIndex: 0,
              cursor: null,
              remainingByKid: {},
              rewrappedByKid: {},
              prefixes,
            };
        let raw = await saveCursor(store, settings.jobId, saved?.raw ?? null, doc);
        const run: JobCounts = { scanned: 0, rewrapped: 0 };
        const stoppedResult = () => ({
          ...run,
          remainingByKid: doc.remainingByKid,
          resumed,
          activeKid,
          retired: [],
          destroyed: [],
          settling: [],
          apiKeysRevoked,
          stopped: true,
        });

        while (doc.prefixIndex < settings.prefixes.length) {
          if (options.signal?.aborted) return stoppedResult();
          const target = settings.prefixes[doc.prefixIndex]!;
          const page = await store.scan(target.prefix, {
            limit: settings.batchSize,
            ...(doc.cursor ? { cursor: doc.cursor } : {}),
          });
          const outcomes = await Promise.all(page.entries.map((entry) => rewrapOne(entry, target)));
          const bySource = tally(outcomes, run, doc.remainingByKid);
          const rewrappedByKid = { ...doc.rewrappedByKid };
          for (const [fromKid, count] of bySource) {
            rewrappedByKid[fromKid] = (rewrappedByKid[fromKid] ?? 0) + count;
            core.audit.emit({
              type: 'secret.rewrapped',
              fromKid,
              kid: activeKid,
              count,
              actor: { type: 'scheduler', id: 'rewrap' },
            });
          }
          const next: CursorDocument =
            page.cursor === null
              ? { ...doc, rewrappedByKid, prefixIndex: doc.prefixIndex + 1, cursor: null }
              : { ...doc, rewrappedByKid, cursor: page.cursor };
          await lock.check();
          raw = await saveCursor(store, settings.jobId, raw, next);
          doc = next;
          options.onProgress?.({
            prefix: target.prefix,
            scanned: run.scanned,
            rewrapped: run.rewrapped,
            rewrappedByKid: { ...rewrappedByKid },
            done: false,
          });
        }

        const records = core.keys.snapshot().records();
        const retired: string[] = [];
        for (const kid of retirableKids(records, doc, settings.settleMs)) {
          const left = await pinned(kid);
          if (left > 0) {
            doc.remainingByKid = { ...doc.remainingByKid, [kid]: left };
            continue;
          }
          await retire(kid);
          retired.push(kid);
        }
        const destroyed: string[] = [];
        const destroyable = new Set(destroyRevoked ? destroyableKids(records, doc, settings.settleMs) : []);
        const settling = destroyRevoked
          ? revokedDataKeys(records)
              .filter((r) => !destroyable.has(r.kid) && (doc.remainingByKid[r.kid] ?? 0) === 0)
              .map((r) => r.kid)
          : [];
        for (const kid of destroyable) {
          // Any API key created under it by an instance that had not synced yet is revoked too.
          apiKeysRevoked += await invalidatePinned(kid);
          const left = await pinned(kid);
          if (left > 0) {
            doc.remainingByKid = { ...doc.remainingByKid, [kid]: left };
            continue;
          }
          await lock.check();
          await destroy(kid);
          destroyed.push(kid);
        }
        await store.delete(cursorKey(settings.jobId));
        options.onProgress?.({
          prefix: settings.prefixes.at(-1)!.prefix,
          scanned: run.scanned,
          rewrapped: run.rewrapped,
          rewrappedByKid: { ...doc.rewrappedByKid },
          done: true,
        });
        return {
          ...run,
          remainingByKid: doc.remainingByKid,
          resumed,
          activeKid,
          retired,
          destroyed,
          settling,
          apiKeysRevoked,
          stopped: false,
        };
      } finally {
        await lock.release();
      }
    },
  };
}

/**
 * Counts the ciphertexts under data key `kid` in the records of `targets` (one walk, no
 * decryption of prefixed values): the "records still to rewrap" of a revoked data key.
 *
 * @example
 * ```ts
 * await countCiphertextsUnder(core, [SECRETS_REWRAP_TARGET, IDP_REWRAP_TARGET], leakedKid)
 * ```
 */
export async function countCiphertextsUnder(
  core: Pick<KeywardCore, 'store' | 'keys' | 'now'>,
  targets: readonly RewrapTarget[],
  kid: string,
  cipher: DataCipher = createDataCipher(core),
): Promise<number> {
  let count = 0;
  for (const target of targets) {
    const extract = target.extract ?? ((value: string) => value);
    for (const prefix of target.prefixes) {
      const seen = new Set<string>(); // Redis SCAN may return a key twice
      for await (const entry of storeEntries(core.store, 'scan', prefix, { limit: 1000 })) {
        if (seen.has(entry.key)) continue;
        seen.add(entry.key);
        const ciphertext = extract(entry.value, entry.key);
        if (ciphertext !== undefined && cipher.kidOf(ciphertext) === kid) count += 1;
      }
    }
  }
  return count;
}
