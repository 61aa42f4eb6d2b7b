import type { KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import type { KeyRecord } from '../keys/types.js';
import { createDataCipher, type DataCipher } from './cipher.js';
import { countCiphertextsUnder, createRewrapJob, type RewrapResult, type RewrapTarget } from './rewrap.js';
import { readCursor, revokedDataKeys } from './rewrap-state.js';

/** Options of the background rewrap that follows the revocation of a data key (`createKeyward({ dataKeyRewrap })`). */
export interface DataKeyRewrapOptions {
  /**
   * Run the rewrap in this process: at once on the instance that revoked a data key, and on any
   * instance (every `checkIntervalMs`, and when it learns of the revocation) while a revoked data
   * key still has material, so a rewrap killed with its process is resumed elsewhere. Default
   * `true`; one-shot processes (the CLI) pass `false`.
   */
  background?: boolean;
  /**
   * Every kind of record holding data-key ciphertext. Default: secrets and IdP tokens
   * (`[SECRETS_REWRAP_TARGET, IDP_REWRAP_TARGET]`). Add your own records encrypted with `kw.data`:
   * a revoked key is destroyed once these targets hold nothing under it.
   */
  targets?: RewrapTarget[];
  /** See `RewrapJobOptions.settleMs`: how long after the revocation the key's material may be destroyed. Default 60,000 ms. */
  settleMs?: number;
  /** See `RewrapJobOptions.lockTtlMs`. Default 15,000 ms. */
  lockTtlMs?: number;
  /** See `RewrapJobOptions.batchSize`. Default 500. */
  batchSize?: number;
  /** How often an idle instance checks for a revoked data key left with material. Default: `lockTtlMs`. */
  checkIntervalMs?: number;
  /** Names this process in the rewrap lock (and in "running elsewhere" errors). Default `<hostname>:<pid>`. */
  instanceId?: string;
}

/** Where the rewrap of one revoked data key stands. */
export interface DataKeyRewrapStatus {
  /** The revoked data key. */
  kid: string;
  /** `rewrapping`: records remain under it; `settling`: emptied, material destroyed after `settleMs`; `destroyed`: done. */
  state: 'rewrapping' | 'settling' | 'destroyed';
  /** Records under it when it was revoked (`undefined` when revoked by a process that did not count them). */
  toRewrap: number | undefined;
  /** Records moved off it so far (this pass). */
  rewrapped: number;
  /** Records still to rewrap (an estimate while the pass runs; 0 once settling or destroyed). */
  remaining: number | undefined;
  revokedAt: number | undefined;
  destroyedAt: number | undefined;
}

/** The background rewrap of revoked data keys (`kw.dataRewrap`). */
export interface DataKeyRewrap {
  /** The progress of every revoked data key still holding material (destroyed ones are listed once destroyed, from the keyring). */
  status(): Promise<DataKeyRewrapStatus[]>;
  /**
   * Runs the rewrap now, in this process, until every revoked data key is destroyed (waiting out
   * `settleMs`) or the pass cannot finish. `lock_not_acquired` when another instance runs it.
   */
  run(): Promise<RewrapResult | undefined>;
  /** Resolves when the background run of this process (if any) has stopped. */
  whenIdle(): Promise<void>;
}

/** Store key of what the revoking instance recorded about a revoked data key. */
export function revokedDataKeyKey(kid: string): string {
  return `datakey:revoked:${kid}`;
}

interface RevokedNote {
  kid: string;
  revokedAt: number;
  toRewrap: number;
  /** Set once a pass left nothing under it. */
  emptiedAt?: number;
}

const JOB_ID = 'data';
/** How long the background rewrap waits before walking again after a pass that could not empty a revoked key. */
const BACKOFF_MS = 10 * 60_000;

/** Internal: the compromise flow behind `createKeyward`'s data-key revocation. */
export function createDataKeyRewrap(
  core: KeywardCore,
  targets: readonly RewrapTarget[],
  options: DataKeyRewrapOptions = {},
  cipher: DataCipher = createDataCipher(core),
): DataKeyRewrap & {
  afterRevoke(kid: string): Promise<number | undefined>;
  close(): Promise<void>;
} {
  const background = options.background !== false;
  const settleMs = options.settleMs ?? 60_000;
  const stop = new AbortController();
  let running: Promise<unknown> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  /** After a pass that left records it cannot open under a revoked key: no new pass before this. */
  let backoffUntil = 0;

  const job = createRewrapJob(
    core,
    {
      targets: [...targets],
      jobId: JOB_ID,
      settleMs,
      destroyRevoked: true,
      signal: stop.signal,
      ...(options.lockTtlMs !== undefined ? { lockTtlMs: options.lockTtlMs } : {}),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
    },
    cipher,
  );

  const pending = () => revokedDataKeys(core.keys.list());

  async function note(kid: string, patch: Partial<RevokedNote>): Promise<void> {
    const raw = await core.store.get(revokedDataKeyKey(kid));
    if (raw === null) return;
    await core.store.compareAndSet(
      revokedDataKeyKey(kid),
      raw,
      JSON.stringify({ ...(JSON.parse(raw) as RevokedNote), ...patch }),
    );
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      stop.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** Passes until every revoked data key is destroyed, waiting out `settleMs` between passes. */
  async function loop(): Promise<RewrapResult | undefined> {
    let last: RewrapResult | undefined;
    while (!stop.signal.aborted && pending().length > 0) {
      again = false;
      last = await job.run();
      if (last.stopped) break;
      for (const kid of last.settling) await note(kid, { emptiedAt: core.now() }).catch(() => undefined);
      if (last.settling.length === 0) {
        const stuck = pending().filter((r) => (last?.remainingByKid[r.kid] ?? 0) > 0);
        if (stuck.length > 0) {
          // Records nobody can rewrap (unreadable, or API keys that failed to revoke): do not walk
          // every record again at each check; an operator has to look.
          backoffUntil = core.now() + BACKOFF_MS;
          core.logger.warn(
            { kids: stuck.map((r) => r.kid), remaining: stuck.map((r) => last?.remainingByKid[r.kid]) },
            'keyward data-key rewrap: records remain under a revoked data key; its material is kept',
          );
          break;
        }
        if (!again) break;
        continue;
      }
      const due = Math.min(
        ...pending()
          .filter((r) => last?.settling.includes(r.kid))
          .map((r) => (r.revokedAt ?? core.now()) + settleMs),
      );
      await sleep(Math.max(0, due - core.now()) + 10);
    }
    return last;
  }

  function kick(): void {
    if (!background || stop.signal.aborted || core.now() < backoffUntil) return;
    if (running) {
      again = true;
      return;
    }
    if (pending().length === 0) return;
    running = loop()
      .catch((err: unknown) => {
        // Another instance runs it (it will finish it), or the store is down: the watchdog retries.
        if (!isKeywardError(err, 'lock_not_acquired'))
          core.logger.warn(
            { code: isKeywardError(err) ? err.code : 'internal_error' },
            `keyward data-key rewrap stopped: ${err instanceof Error ? err.message : 'unknown error'}`,
          );
      })
      .finally(() => {
        running = undefined;
      });
  }

  let off: (() => void) | undefined;
  if (background) {
    timer = setInterval(kick, options.checkIntervalMs ?? options.lockTtlMs ?? 15_000);
    timer.unref();
    off = core.sync.onApplied((change) => {
      if (change.kind === 'keyring') kick();
    });
    kick();
  }

  function statusOf(
    record: KeyRecord,
    noteOf: RevokedNote | undefined,
    rewrapped: number,
  ): DataKeyRewrapStatus {
    const destroyed = record.destroyedAt !== undefined;
    const settling = !destroyed && noteOf?.emptiedAt !== undefined;
    const toRewrap = noteOf?.toRewrap;
    return {
      kid: record.kid,
      state: destroyed ? 'destroyed' : settling ? 'settling' : 'rewrapping',
      toRewrap,
      rewrapped,
      remaining:
        destroyed || settling ? 0 : toRewrap === undefined ? undefined : Math.max(0, toRewrap - rewrapped),
      revokedAt: record.revokedAt,
      destroyedAt: record.destroyedAt,
    };
  }

  return {
    async afterRevoke(kid) {
      try {
        const revokedAt = core.keys.snapshot().record(kid)?.revokedAt ?? core.now();
        const toRewrap = await countCiphertextsUnder(core, targets, kid, cipher);
        const record: RevokedNote = { kid, revokedAt, toRewrap };
        await core.store.set(revokedDataKeyKey(kid), JSON.stringify(record));
        return toRewrap;
      } catch (err) {
        // The revocation is committed: a failed count must not turn it into an error.
        core.logger.warn(
          { kid, code: isKeywardError(err) ? err.code : 'internal_error' },
          'keyward: could not count the records under a revoked data key',
        );
        return undefined;
      } finally {
        kick();
      }
    },
    async status() {
      const records = core.keys
        .list()
        .filter((r) => r.use === 'data' && r.state === 'revoked' && r.origin !== 'legacy');
      if (records.length === 0) return [];
      const cursor = (await readCursor(core.store, JOB_ID))?.doc;
      const out: DataKeyRewrapStatus[] = [];
      for (const record of records) {
        const raw = await core.store.get(revokedDataKeyKey(record.kid));
        let parsed: RevokedNote | undefined;
        try {
          parsed = raw === null ? undefined : (JSON.parse(raw) as RevokedNote);
        } catch {
          parsed = undefined;
        }
        out.push(statusOf(record, parsed, cursor?.rewrappedByKid?.[record.kid] ?? 0));
      }
      return out;
    },
    async run() {
      if (running) await running;
      if (pending().length === 0) return undefined;
      const own = loop();
      running = own
        .catch(() => undefined)
        .finally(() => {
          running = undefined;
        });
      return own;
    },
    async whenIdle() {
      while (running) await running;
    },
    async close() {
      stop.abort();
      if (timer) clearInterval(timer);
      off?.();
      await running;
    },
  };
}
