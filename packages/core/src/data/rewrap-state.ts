import { KeywardError } from '../errors.js';
import type { KeyRecord } from '../keys/types.js';
import type { Store } from '../store/types.js';
import type { RewrapJobOptions, RewrapTarget } from './rewrap.js';

/** The saved progress of one pass, so a killed job resumes where it stopped. */
export interface CursorDocument {
  v: 1;
  /** The data key the pass rewraps to; a rotation since then starts a new pass. */
  activeKid: string;
  /** Fencing token of the lock holder that wrote this document. */
  fence: number;
  /** When the pass began (core clock), for the settle rule of retirement. */
  startedAt: number;
  prefixIndex: number;
  /** Store cursor within `prefixes[prefixIndex]`; `null` at its start. */
  cursor: string | null;
  remainingByKid: Record<string, number>;
  /** Records re-encrypted in the whole pass (every run of it), by source kid: the progress health shows. */
  rewrappedByKid?: Record<string, number>;
  /**
   * The prefixes the pass walks, in order (`prefixIndex` indexes them). A run with other prefixes
   * starts a new pass instead of resuming this one, so no prefix is ever skipped.
   */
  prefixes?: string[];
}

/** Counts of one run. */
export interface JobCounts {
  scanned: number;
  rewrapped: number;
}

/** One prefix to walk, with how to read and write the ciphertext of its records. */
export interface PrefixSetting {
  prefix: string;
  extract: (value: string, key: string) => string | undefined;
  inject: (value: string, ciphertext: string, key: string) => string;
  migrate: ((plaintext: Uint8Array, key: string) => Uint8Array | undefined) | undefined;
  migrated: (value: string, key: string) => boolean;
}

export interface RewrapSettings {
  /** Every prefix of every target, in order (the cursor's `prefixIndex` indexes this list). */
  prefixes: PrefixSetting[];
  batchSize: number;
  jobId: string;
  settleMs: number;
  lockTtlMs: number;
  instanceId: string;
}

/** Default TTL of the job lock; a heartbeat renews it every third of it while the job runs. */
export const DEFAULT_LOCK_TTL_MS = 15_000;

const wholeValue = (value: string) => value;
const replaceWhole = (_value: string, ciphertext: string) => ciphertext;
const never = () => false;

function checkPrefixes(prefixes: unknown): prefixes is string[] {
  return (
    Array.isArray(prefixes) &&
    prefixes.length > 0 &&
    prefixes.every((p) => typeof p === 'string' && p.length > 0)
  );
}

function checkFunctions(target: object, names: readonly string[]): void {
  for (const fn of names) {
    const value = (target as Record<string, unknown>)[fn];
    if (value !== undefined && typeof value !== 'function') throw configError(fn, 'a function');
  }
}

function configError(option: string, expected: string): KeywardError {
  return new KeywardError('config_invalid', `createRewrapJob: ${option} must be ${expected}`, {
    details: { option },
  });
}

function positiveInt(value: number | undefined, fallback: number, option: string, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw configError(option, `an integer from 0 to ${max}`);
  return value;
}

/** Validates {@link RewrapJobOptions} at construction. */
export function validateOptions(options: RewrapJobOptions, defaultInstanceId: string): RewrapSettings {
  const targets: RewrapTarget[] =
    options?.targets !== undefined
      ? options.targets
      : [
          {
            prefixes: options?.prefixes as string[],
            ...(options?.extract ? { extract: options.extract } : {}),
            ...(options?.inject ? { inject: options.inject } : {}),
            ...(options?.migrate ? { migrate: options.migrate } : {}),
            ...(options?.migrated ? { migrated: options.migrated } : {}),
          },
        ];
  if (!Array.isArray(targets) || targets.length === 0)
    throw configError('targets', 'a non-empty array of { prefixes, extract?, inject? }');
  if (
    options.targets !== undefined &&
    (options.prefixes !== undefined ||
      options.extract ||
      options.inject ||
      options.migrate ||
      options.migrated)
  )
    throw configError('targets', 'given alone (not with prefixes, extract, inject, migrate or migrated)');
  const prefixes: PrefixSetting[] = [];
  for (const target of targets) {
    if (!checkPrefixes(target?.prefixes))
      throw configError('prefixes', 'a non-empty array of non-empty store prefixes');
    checkFunctions(target, ['extract', 'inject', 'migrate', 'migrated']);
    for (const prefix of target.prefixes)
      prefixes.push({
        prefix,
        extract: target.extract ?? wholeValue,
        inject: target.inject ?? replaceWhole,
        migrate: target.migrate,
        migrated: target.migrated ?? never,
      });
  }
  const jobId = options.jobId ?? 'data';
  if (typeof jobId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(jobId))
    throw configError('jobId', '1 to 64 characters of A-Z a-z 0-9 . _ -');
  checkFunctions(options, ['onProgress', 'retire', 'destroy', 'pinned', 'invalidatePinned']);
  if (options.destroyRevoked !== undefined && typeof options.destroyRevoked !== 'boolean')
    throw configError('destroyRevoked', 'a boolean');
  const batchSize = positiveInt(options.batchSize, 500, 'batchSize', 10_000);
  if (batchSize === 0) throw configError('batchSize', 'an integer from 1 to 10000');
  const lockTtlMs = positiveInt(options.lockTtlMs, DEFAULT_LOCK_TTL_MS, 'lockTtlMs', 86_400_000);
  if (lockTtlMs < 1000) throw configError('lockTtlMs', 'at least 1000 ms');
  const instanceId = options.instanceId ?? defaultInstanceId;
  if (typeof instanceId !== 'string' || instanceId.length === 0 || instanceId.length > 256)
    throw configError('instanceId', 'a string of 1 to 256 characters');
  return {
    prefixes,
    batchSize,
    jobId,
    settleMs: positiveInt(options.settleMs, 60_000, 'settleMs', 30 * 86_400_000),
    lockTtlMs,
    instanceId,
  };
}

/** Who holds a job's lock, written next to it (same TTL, renewed by the heartbeat). */
export interface LockHolder {
  instanceId: string;
  /** When it took the lock (its clock, epoch ms). */
  since: number;
  /** When the lease ends unless renewed (its clock, epoch ms). */
  until: number;
}

/** Store key naming the holder of a job's lock. */
export function holderKey(jobId: string): string {
  return `rewrap:holder:${jobId}`;
}

/** The `lock_not_acquired` of a job someone else runs: names the holder and how long it has held the lock. */
export async function runningElsewhere(
  store: Store,
  settings: RewrapSettings,
  now: number,
): Promise<KeywardError> {
  let holder: LockHolder | undefined;
  try {
    const raw = await store.get(holderKey(settings.jobId));
    holder = raw === null ? undefined : (JSON.parse(raw) as LockHolder);
  } catch {
    holder = undefined;
  }
  const { jobId, lockTtlMs } = settings;
  if (typeof holder?.instanceId !== 'string' || typeof holder.since !== 'number')
    return new KeywardError(
      'lock_not_acquired',
      `rewrap job "${jobId}" is running elsewhere (holder unknown); its lock lapses within ${lockTtlMs} ms unless renewed`,
      { details: { jobId, lockTtlMs } },
    );
  const heldForMs = Math.max(0, now - holder.since);
  const expiresInMs = Math.max(0, (holder.until ?? now) - now);
  const instance = holder.instanceId.slice(0, 256);
  return new KeywardError(
    'lock_not_acquired',
    `rewrap job "${jobId}" is running elsewhere: instance "${instance}" has held its lock for ${heldForMs} ms (lease ends in ${expiresInMs} ms unless its heartbeat renews it)`,
    { details: { jobId, holder: instance, heldForMs, expiresInMs, lockTtlMs } },
  );
}

/** Store key of a job's saved cursor. */
export function cursorKey(jobId: string): string {
  return `rewrap:cursor:${jobId}`;
}

/** The saved cursor (and its raw value, for compare-and-set), or `null`; an unreadable one counts as none. */
export async function readCursor(
  store: Store,
  jobId: string,
): Promise<{ raw: string; doc: CursorDocument | null } | null> {
  const raw = await store.get(cursorKey(jobId));
  if (raw === null) return null;
  try {
    const doc = JSON.parse(raw) as CursorDocument;
    if (doc.v === 1 && typeof doc.activeKid === 'string' && typeof doc.prefixIndex === 'number')
      return { raw, doc };
  } catch {
    // fall through: start a new pass, overwriting it
  }
  return { raw, doc: null };
}

/**
 * Writes the cursor with compare-and-set on the value this holder last wrote, so a paused holder
 * whose lock expired cannot move the new holder's cursor.
 */
export async function saveCursor(
  store: Store,
  jobId: string,
  previous: string | null,
  doc: CursorDocument,
): Promise<string> {
  const raw = JSON.stringify(doc);
  if (!(await store.compareAndSet(cursorKey(jobId), previous, raw)))
    throw new KeywardError('lock_lost', `rewrap job "${jobId}": another holder moved the cursor`, {
      details: { jobId },
    });
  return raw;
}

/** What happened to one record. */
export type Outcome =
  | { kind: 'skip' }
  | { kind: 'current' }
  | { kind: 'rewrapped'; fromKid: string }
  | { kind: 'remaining'; kid: string };

/** Adds a batch's outcomes to the counts; returns rewrapped counts by source kid (for audit). */
export function tally(
  outcomes: readonly Outcome[],
  run: JobCounts,
  remainingByKid: Record<string, number>,
): Map<string, number> {
  const bySource = new Map<string, number>();
  for (const outcome of outcomes) {
    run.scanned += 1;
    if (outcome.kind === 'rewrapped') {
      run.rewrapped += 1;
      bySource.set(outcome.fromKid, (bySource.get(outcome.fromKid) ?? 0) + 1);
    } else if (outcome.kind === 'remaining') {
      remainingByKid[outcome.kid] = (remainingByKid[outcome.kid] ?? 0) + 1;
    }
  }
  return bySource;
}

/**
 * Revoked data keys a finished pass leaves empty, whose material may be destroyed: generated, not
 * destroyed yet, revoked at least `settleMs` before the pass began (every instance had switched to
 * the replacement, so none still writes under it), and with nothing remaining under them.
 */
export function destroyableKids(
  records: readonly KeyRecord[],
  doc: CursorDocument,
  settleMs: number,
): string[] {
  return revokedDataKeys(records)
    .filter(
      (r) =>
        r.revokedAt !== undefined &&
        r.revokedAt + settleMs <= doc.startedAt &&
        (doc.remainingByKid[r.kid] ?? 0) === 0,
    )
    .map((r) => r.kid);
}

/**
 * Revoked data keys whose material is not destroyed yet: what a compromise rewrap still has to empty.
 *
 * @example
 * ```ts
 * revokedDataKeys(core.keys.list()).map((r) => r.kid)
 * ```
 */
export function revokedDataKeys(records: readonly KeyRecord[]): KeyRecord[] {
  return records.filter(
    (r) => r.use === 'data' && r.state === 'revoked' && r.origin !== 'legacy' && r.destroyedAt === undefined,
  );
}

/**
 * Retiring data keys a finished pass leaves empty: generated (a legacy key comes from `JWT_SECRET`
 * and goes away with it), retiring since at least `settleMs` before the pass began, and with
 * nothing remaining under them.
 */
export function retirableKids(
  records: readonly KeyRecord[],
  doc: CursorDocument,
  settleMs: number,
): string[] {
  return records
    .filter(
      (r) =>
        r.use === 'data' &&
        r.state === 'retiring' &&
        r.origin !== 'legacy' &&
        r.retiringAt !== undefined &&
        r.retiringAt + settleMs <= doc.startedAt &&
        (doc.remainingByKid[r.kid] ?? 0) === 0,
    )
    .map((r) => r.kid);
}
