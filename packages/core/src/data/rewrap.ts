import { countApiKeysPinnedTo } from '../apikeys/record.js';
import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import type { StoreEntry } from '../store/types.js';
import { createDataCipher, type DataCipher } from './cipher.js';
import {
  type CursorDocument,
  cursorKey,
  type JobCounts,
  type Outcome,
  readCursor,
  retirableKids,
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
}

/** Options of {@link createRewrapJob}. */
export interface RewrapJobOptions {
  /** Store prefixes whose records hold ciphertexts. Every prefix holding data-key ciphertext must be listed, or a key could retire under live data. */
  prefixes: string[];
  /** Records per batch (one store page, one cursor save, one audit event per source kid). Default 500, at most 10,000. */
  batchSize?: number;
  /** The ciphertext inside a record, or `undefined` to skip it. Default: the whole value. See {@link jsonField}. */
  extract?: (value: string, key: string) => string | undefined;
  /** The record with its ciphertext replaced. Default: the ciphertext itself. */
  inject?: (value: string, ciphertext: string, key: string) => string;
  /** Called after each batch. */
  onProgress?: (progress: RewrapProgress) => void;
  /** Retires a data key. Default: `core.keys.retireDataKey(kid, 0)` (one keyring update, audited as `key.retired`). */
  retire?: (kid: string) => Promise<void>;
  /**
   * Counts records that pin a data key but cannot be rewrapped (API keys hashed under its pepper:
   * only their holders know the secret). A key with pinned records is not retired; the count is
   * reported in `remainingByKid`. Default: live API keys under the kid.
   */
  pinned?: (kid: string) => Promise<number>;
  /** Names the saved cursor and the lock, so separate jobs do not share them. Default `data`. */
  jobId?: string;
  /**
   * A retiring key is retired only if it was already retiring this long before the pass started, so
   * that every instance had switched to the new key (sync lag) and none can still write under it. Default 60,000 ms.
   */
  settleMs?: number;
  /** TTL of the job lock, extended after each batch. Default 60,000 ms. */
  lockTtlMs?: number;
}

/** A resumable re-encryption of stored ciphertexts under the active data key. */
export interface RewrapJob {
  /** Runs (or resumes) the pass. `lock_not_acquired` when another instance runs it; `lock_lost` when the lock expired mid-run. */
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
 * Creates the rewrap job: after a data-key rotation, walks every record under `prefixes` in
 * batches and re-encrypts what is not under the active data key, keeping each token's original
 * timestamp. Each record is written with compare-and-set, so a concurrent `put` always wins. The
 * cursor is saved in the store after each batch: a killed job resumes where it stopped. One audit
 * event `secret.rewrapped` per batch and source kid (counts and kids only). When the pass leaves no
 * ciphertext under a retiring data key, that key is retired.
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
  const settings = validateOptions(options);
  const { store } = core;
  const extract = options.extract ?? ((value: string) => value);
  const inject = options.inject ?? ((_value: string, ciphertext: string) => ciphertext);
  const retire = options.retire ?? ((kid: string) => core.keys.retireDataKey(kid, 0));
  const pinned = options.pinned ?? ((kid: string) => countApiKeysPinnedTo(core.store, kid));

  async function rewrapOne(entry: StoreEntry): Promise<Outcome> {
    let value = entry.value;
    let ciphertext: string | undefined;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      ciphertext = extract(value, entry.key);
      if (ciphertext === undefined) return { kind: 'skip' };
      if (cipher.isCurrent(ciphertext)) return { kind: 'current' };
      let next: string;
      try {
        next = inject(value, cipher.rewrap(ciphertext), entry.key);
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

  return {
    async run() {
      const lock = await store.acquireLock(`rewrap:${settings.jobId}`, settings.lockTtlMs);
      if (!lock)
        throw new KeywardError('lock_not_acquired', `rewrap job "${settings.jobId}" is running elsewhere`, {
          details: { jobId: settings.jobId },
        });
      try {
        const activeKid = core.keys.snapshot().dataKey().kid;
        const saved = await readCursor(store, settings.jobId);
        const previous = saved?.doc?.activeKid === activeKid ? saved.doc : null;
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
            };
        let raw = await saveCursor(store, settings.jobId, saved?.raw ?? null, doc);
        const run: JobCounts = { scanned: 0, rewrapped: 0 };

        while (doc.prefixIndex < settings.prefixes.length) {
          const prefix = settings.prefixes[doc.prefixIndex]!;
          const page = await store.scan(prefix, {
            limit: settings.batchSize,
            ...(doc.cursor ? { cursor: doc.cursor } : {}),
          });
          const outcomes = await Promise.all(page.entries.map(rewrapOne));
          const bySource = tally(outcomes, run, doc.remainingByKid);
          for (const [fromKid, count] of bySource)
            core.audit.emit({
              type: 'secret.rewrapped',
              fromKid,
              kid: activeKid,
              count,
              actor: { type: 'scheduler', id: 'rewrap' },
            });
          const next: CursorDocument =
            page.cursor === null
              ? { ...doc, prefixIndex: doc.prefixIndex + 1, cursor: null }
              : { ...doc, cursor: page.cursor };
          raw = await saveCursor(store, settings.jobId, raw, next);
          doc = next;
          if (!(await lock.extend(settings.lockTtlMs)))
            throw new KeywardError('lock_lost', `rewrap job "${settings.jobId}" lost its lock`);
          options.onProgress?.({ prefix, scanned: run.scanned, rewrapped: run.rewrapped, done: false });
        }

        const candidates = retirableKids(core.keys.snapshot().records(), doc, settings.settleMs);
        const retired: string[] = [];
        for (const kid of candidates) {
          const left = await pinned(kid);
          if (left > 0) {
            doc.remainingByKid = { ...doc.remainingByKid, [kid]: left };
            continue;
          }
          await retire(kid);
          retired.push(kid);
        }
        await store.delete(cursorKey(settings.jobId));
        options.onProgress?.({
          prefix: settings.prefixes.at(-1)!,
          scanned: run.scanned,
          rewrapped: run.rewrapped,
          done: true,
        });
        return {
          ...run,
          remainingByKid: doc.remainingByKid,
          resumed,
          activeKid,
          retired,
        };
      } finally {
        await lock.release().catch(() => false);
      }
    },
  };
}
