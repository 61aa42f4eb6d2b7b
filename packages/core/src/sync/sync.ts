import { KeywardError, type KeywardErrorCode } from '../errors.js';
import {
  EVENTS_CHANNEL,
  KEYRING_GENERATION_KEY,
  KEYRING_KEY,
  type KeyringDocument,
} from '../keys/keyring-store.js';
import type { Store } from '../store/types.js';
import { republishRevocations } from './recovery.js';
import {
  REVOCATION_GENERATION_KEY,
  type RevocationEvent,
  type RevocationSet,
  readGeneration,
} from './revocations.js';

/** A change an instance applied to its in-memory state (see `KeywardCore.sync.onApplied`). */
export type SyncChange =
  /** A new keyring snapshot was swapped in. */
  | { kind: 'keyring'; generation: number }
  /** One revocation was applied (from an announcement, or written by this instance). */
  | { kind: 'revocation'; revocation: RevocationEvent }
  /** The revocation set was reloaded from the store (a poll found announcements missing). */
  | { kind: 'revocations'; generation: number };

/** Options of {@link KeyringSync}. */
export interface KeyringSyncOptions {
  store: Store;
  revocations: RevocationSet;
  /** Current keyring generation held in memory. */
  generation: () => number;
  /** Reloads and swaps in the keyring (called when the store holds a newer generation). */
  reloadKeyring: (doc: KeyringDocument | null) => Promise<void>;
  /** Parses a raw keyring document (checks the master key). */
  parseKeyring: (raw: string | null) => KeyringDocument | null;
  /** Poll interval in ms (repairs lost announcements and store outages). Default 1000. */
  pollIntervalMs?: number;
  /**
   * Most polls read only the small generation key; every `fullReadEvery`-th poll reads the whole
   * document too, in case a writer died between its commit and its generation write. Default 10.
   */
  fullReadEvery?: number;
  now?: () => number;
  /** Called when an announcement was applied, with its end-to-end lag in ms when known. */
  onApplied?: (kind: 'keyring' | 'revocation', lagMs: number | undefined) => void;
  /** Called for every revocation change applied (announcement or reload). */
  onRevocations?: (change: SyncChange) => void;
  onError?: (error: KeywardError) => void;
  /**
   * Writes the held keyring document back with compare-and-set over `expected` (the raw value the
   * store holds: `null` when it lost the keyring, or an older generation of the same lineage).
   * Resolves `true` when this write won. With it, a poll that finds the store empty (or gone back
   * to an older generation) re-publishes what this instance holds instead of only failing; without
   * it, that poll fails (`store_error`) and keeps the last snapshot. It also turns on writing back
   * the held revocations when the store's revocation counter went backwards (data loss).
   */
  republishKeyring?: (expected: string | null) => Promise<boolean>;
  /**
   * Whether a stored document continues the keyring held in memory (same lineage). A document for
   * which it is `false` is never applied: the status reports `keyringProblem: 'foreign'`.
   */
  sameLineage?: (doc: KeyringDocument) => boolean;
  /** Called when {@link SyncStatus.keyringProblem} changes (to log it). */
  onKeyringProblem?: (problem: KeyringProblem | undefined) => void;
}

/**
 * What is wrong with the keyring in the store, seen from an instance that holds one:
 *
 * - `lost` — the store holds no keyring (or an older generation of it); re-publishing did not
 *   succeed yet (the store is unreachable, say);
 * - `republished` — it was lost and has been written back (by this instance or another); cleared
 *   by the next read that finds this instance's lineage in the store;
 * - `foreign` — the store holds a keyring of another lineage: not applied, not written over,
 *   until an operator decides (docs/architecture.md, "Incidents").
 */
export type KeyringProblem = 'lost' | 'republished' | 'foreign';

/** What sync reports to health. */
export interface SyncStatus {
  subscribed: boolean;
  generation: number;
  lastSuccessAt: number | undefined;
  lastErrorAt: number | undefined;
  lastError: string | undefined;
  /**
   * Code of the last failure (`store_unavailable`, or `master_key_mismatch` when the stored
   * keyring was re-sealed under a master key this instance does not hold).
   */
  lastErrorCode?: KeywardErrorCode | undefined;
  /** True while the last contact with the store failed: serving from the last snapshot (fail static). */
  stale: boolean;
  /** Set while the store does not hold this instance's keyring (see {@link KeyringProblem}); health fails readiness. */
  keyringProblem?: KeyringProblem;
  /** Store generation of revocations this instance has applied in full. */
  revocationGeneration: number;
  /**
   * Full reloads of the revocation set done by polls since start (each one means announcements
   * were missing). Stays flat while the subscription delivers every announcement.
   */
  revocationReloads: number;
}

type OptionalHook =
  | 'onApplied'
  | 'onError'
  | 'onRevocations'
  | 'republishKeyring'
  | 'sameLineage'
  | 'onKeyringProblem';

type Announcement = (
  | { type: 'keyring'; generation: number }
  | (RevocationEvent & { generation?: number })
) & {
  at?: number;
};

/** The revocation of an announcement, or `undefined` when it is malformed. */
function revocationOf(event: Record<string, unknown>): RevocationEvent | undefined {
  const { type, until } = event;
  if (type === 'revoke-jti') {
    const { jti } = event;
    return typeof jti === 'string' && typeof until === 'number' ? { type, jti, until } : undefined;
  }
  const { sub, notBefore } = event;
  if (typeof sub !== 'string' || typeof notBefore !== 'number') return undefined;
  // Older writers announce no `until`; the set then derives it from its retention.
  return { type: 'revoke-subject', sub, notBefore, until: typeof until === 'number' ? until : Number.NaN };
}

/**
 * Keeps an instance's in-memory keyring and revocation set current: applies announcements from
 * the events channel at once, and polls the generations so a lost announcement or a store
 * outage is repaired. When the store is unreachable nothing changes locally (fail static), and
 * {@link KeyringSync.status} reports `stale` until a poll succeeds again.
 *
 * @example
 * ```ts
 * const sync = new KeyringSync({ store, revocations, generation: () => ring.generation, parseKeyring, reloadKeyring })
 * await sync.start()
 * sync.status().stale // true while the store is unreachable
 * ```
 */
export class KeyringSync {
  readonly #o: Required<Omit<KeyringSyncOptions, OptionalHook>> & Pick<KeyringSyncOptions, OptionalHook>;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #polling: Promise<void> | undefined;
  #polls = 0;
  #status: Omit<SyncStatus, 'generation' | 'revocationGeneration'>;
  #problem: KeyringProblem | undefined;

  constructor(options: KeyringSyncOptions) {
    this.#o = { pollIntervalMs: 1000, fullReadEvery: 10, now: Date.now, ...options };
    if (!Number.isInteger(this.#o.fullReadEvery) || this.#o.fullReadEvery < 1)
      throw new KeywardError('config_invalid', 'fullReadEvery must be a positive integer', {
        details: { option: 'fullReadEvery' },
      });
    this.#status = {
      subscribed: false,
      lastSuccessAt: undefined,
      lastErrorAt: undefined,
      lastError: undefined,
      stale: false,
      revocationReloads: 0,
    };
  }

  /** Subscribes and starts polling. A failed subscription is retried by the poller. */
  async start(): Promise<void> {
    await this.#subscribe();
    this.#timer = setInterval(() => void this.poll(), this.#o.pollIntervalMs);
    this.#timer.unref();
  }

  async #subscribe(): Promise<void> {
    if (this.#unsubscribe) return;
    try {
      this.#unsubscribe = await this.#o.store.subscribe(
        EVENTS_CHANNEL,
        (message) => void this.#onMessage(message),
      );
      this.#status.subscribed = true;
    } catch (err) {
      this.#fail(err);
    }
  }

  async #onMessage(message: string): Promise<void> {
    let event: Announcement;
    try {
      event = JSON.parse(message);
    } catch {
      return;
    }
    const lag = typeof event.at === 'number' ? this.#o.now() - event.at : undefined;
    if (event.type === 'keyring') {
      if (!(event.generation > this.#o.generation())) return;
      try {
        // A direct read, not the shared poll: a poll already in flight may have read before this commit.
        await this.#syncKeyring(true);
        this.#o.onApplied?.('keyring', lag);
      } catch (err) {
        this.#fail(err);
      }
    } else if (event.type === 'revoke-jti' || event.type === 'revoke-subject') {
      const revocation = revocationOf(event as Record<string, unknown>);
      if (revocation === undefined) return;
      const generation = typeof event.generation === 'number' ? event.generation : undefined;
      if (!this.#o.revocations.apply(revocation, generation)) return;
      this.#o.onRevocations?.({ kind: 'revocation', revocation });
      this.#o.onApplied?.('revocation', lag);
    }
  }

  /**
   * Checks the store once and applies what changed. Concurrent calls share one round trip.
   * `full` reads the keyring document even when the generation key says nothing changed.
   */
  poll(options: { full?: boolean } = {}): Promise<void> {
    if (this.#polling && options.full) return this.#polling.then(() => this.poll(options));
    this.#polling ??= this.#pollOnce(options.full === true).finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #pollOnce(full: boolean): Promise<void> {
    const { store, revocations } = this.#o;
    try {
      if (!this.#unsubscribe) await this.#subscribe();
      await this.#syncKeyring(full || this.#polls++ % this.#o.fullReadEvery === 0);
      // Read before listing: the reload covers this generation, and announcements that land
      // meanwhile are applied on their own (the set only grows), so nothing is lost.
      const revGeneration = readGeneration(await store.get(REVOCATION_GENERATION_KEY));
      if (revGeneration < revocations.generation && this.#o.republishKeyring) {
        // The counter never moves backwards: the store lost revocations. Write back what this
        // instance holds (merged with what others wrote back), count from the store's value
        // again, and reload the set from it.
        const written = await republishRevocations(store, [...revocations.entries()], this.#o.now());
        revocations.rebase(revGeneration);
        this.#status.revocationReloads++;
        await revocations.load(store, this.#o.now(), written);
        this.#o.onRevocations?.({ kind: 'revocations', generation: revocations.generation });
      } else if (revGeneration < revocations.generation) {
        // A counter behind ours means the store lost its data: start counting from its value again.
        revocations.rebase(revGeneration);
      } else if (revGeneration > revocations.generation) {
        this.#status.revocationReloads++;
        await revocations.load(store, this.#o.now(), revGeneration);
        this.#o.onRevocations?.({ kind: 'revocations', generation: revocations.generation });
      }
      revocations.prune(this.#o.now());
      this.#status.lastSuccessAt = this.#o.now();
      this.#status.stale = false;
      this.#status.lastError = undefined;
      this.#status.lastErrorCode = undefined;
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Reloads the keyring when the store holds another generation; `full` skips the generation-key shortcut. */
  async #syncKeyring(full: boolean): Promise<void> {
    const { store, republishKeyring, sameLineage } = this.#o;
    // While a keyring problem is open, every poll reads the document: only that can clear it.
    if (!full && this.#problem === undefined) {
      const hint = await store.get(KEYRING_GENERATION_KEY);
      if (hint !== null && Number(hint) === this.#o.generation()) return;
    }
    const raw = await store.get(KEYRING_KEY);
    const doc = this.#o.parseKeyring(raw);
    const held = this.#o.generation();
    if (doc === null) {
      if (held === 0) return;
      if (!republishKeyring)
        throw new KeywardError(
          'store_error',
          'the store holds no keyring although this instance has one (store data lost?); keeping the last snapshot',
        );
      // Never bootstrap beside the keyring instances hold: put it back (create-if-absent, so of
      // several instances exactly one wins; the others read the winner's on their next poll).
      this.#setProblem('lost');
      await republishKeyring(null);
      this.#setProblem('republished');
      return;
    }
    if (held > 0 && sameLineage && !sameLineage(doc)) {
      this.#setProblem('foreign');
      return;
    }
    if (doc.generation < held && republishKeyring) {
      // Generations never go backwards: the store lost writes (or was restored from an old
      // snapshot). The newest document an instance holds goes back in.
      this.#setProblem('lost');
      await republishKeyring(raw);
      this.#setProblem('republished');
      return;
    }
    if (doc.generation !== held) await this.#o.reloadKeyring(doc);
    this.#setProblem(undefined);
  }

  #setProblem(problem: KeyringProblem | undefined): void {
    if (this.#problem === problem) return;
    this.#problem = problem;
    this.#o.onKeyringProblem?.(problem);
  }

  #fail(err: unknown): void {
    const error =
      err instanceof KeywardError ? err : new KeywardError('store_error', 'sync failed', { cause: err });
    this.#status.lastError = `${error.code}: ${error.message}`;
    this.#status.lastErrorCode = error.code;
    this.#status.lastErrorAt = this.#o.now();
    this.#status.stale = true;
    this.#o.onError?.(error);
  }

  /** Current sync status. */
  status(): SyncStatus {
    return {
      ...this.#status,
      generation: this.#o.generation(),
      ...(this.#problem ? { keyringProblem: this.#problem } : {}),
      revocationGeneration: this.#o.revocations.generation,
    };
  }

  /** Stops polling and unsubscribes. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await this.#polling;
    await unsubscribe?.().catch(() => undefined);
  }
}
