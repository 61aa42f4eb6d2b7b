import { KeywardError } from '../errors.js';
import type { KeyRecord } from '../keys/types.js';
import type { Store } from '../store/types.js';
import type { RewrapJobOptions } from './rewrap.js';

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
}

/** Counts of one run. */
export interface JobCounts {
  scanned: number;
  rewrapped: number;
}

export interface RewrapSettings {
  prefixes: string[];
  batchSize: number;
  jobId: string;
  settleMs: number;
  lockTtlMs: number;
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
export function validateOptions(options: RewrapJobOptions): RewrapSettings {
  if (
    !Array.isArray(options?.prefixes) ||
    options.prefixes.length === 0 ||
    options.prefixes.some((p) => typeof p !== 'string' || p.length === 0)
  )
    throw configError('prefixes', 'a non-empty array of non-empty store prefixes');
  const jobId = options.jobId ?? 'data';
  if (typeof jobId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(jobId))
    throw configError('jobId', '1 to 64 characters of A-Z a-z 0-9 . _ -');
  for (const fn of ['extract', 'inject', 'onProgress', 'retire'] as const)
    if (options[fn] !== undefined && typeof options[fn] !== 'function') throw configError(fn, 'a function');
  const batchSize = positiveInt(options.batchSize, 500, 'batchSize', 10_000);
  if (batchSize === 0) throw configError('batchSize', 'an integer from 1 to 10000');
  const lockTtlMs = positiveInt(options.lockTtlMs, 60_000, 'lockTtlMs', 86_400_000);
  if (lockTtlMs < 1000) throw configError('lockTtlMs', 'at least 1000 ms');
  return {
    prefixes: [...options.prefixes],
    batchSize,
    jobId,
    settleMs: positiveInt(options.settleMs, 60_000, 'settleMs', 30 * 86_400_000),
    lockTtlMs,
  };
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
