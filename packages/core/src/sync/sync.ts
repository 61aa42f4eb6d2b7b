import { KeywardError } from '../errors.js';
import { EVENTS_CHANNEL, KEYRING_KEY, type KeyringDocument } from '../keys/keyring-store.js';
import type { Store } from '../store/types.js';
import { REVOCATION_GENERATION_KEY, type RevocationEvent, type RevocationSet } from './revocations.js';

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
  now?: () => number;
  /** Called when an announcement was applied, with its end-to-end lag in ms when known. */
  onApplied?: (kind: 'keyring' | 'revocation', lagMs: number | undefined) => void;
  onError?: (error: KeywardError) => void;
}

/** What sync reports to health. */
export interface SyncStatus {
  subscribed: boolean;
  generation: number;
  lastSuccessAt: number | undefined;
  lastErrorAt: number | undefined;
  lastError: string | undefined;
  /** True while the last contact with the store failed: serving from the last snapshot (fail static). */
  stale: boolean;
}

/**
 * Keeps an instance's in-memory keyring and revocation set current: applies announcements from
 * the events channel at once, and polls the generations so a lost announcement or a store
 * outage is repaired. When the store is unreachable nothing changes locally (fail static).
 */
export class KeyringSync {
  readonly #o: Required<Omit<KeyringSyncOptions, 'onApplied' | 'onError'>> &
    Pick<KeyringSyncOptions, 'onApplied' | 'onError'>;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #polling: Promise<void> | undefined;
  #status: SyncStatus;

  constructor(options: KeyringSyncOptions) {
    this.#o = { pollIntervalMs: 1000, now: Date.now, ...options };
    this.#status = {
      subscribed: false,
      generation: options.generation(),
      lastSuccessAt: undefined,
      lastErrorAt: undefined,
      lastError: undefined,
      stale: false,
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
    let event: ({ type: 'keyring'; generation: number } | RevocationEvent) & { at?: number };
    try {
      event = JSON.parse(message);
    } catch {
      return;
    }
    const lag = typeof event.at === 'number' ? this.#o.now() - event.at : undefined;
    if (event.type === 'keyring') {
      if (event.generation > this.#o.generation()) {
        await this.poll();
        this.#o.onApplied?.('keyring', lag);
      }
    } else if (event.type === 'revoke-jti' || event.type === 'revoke-subject') {
      this.#o.revocations.apply(event);
      this.#o.onApplied?.('revocation', lag);
    }
  }

  /** Checks the store once and applies what changed. Concurrent calls share one round trip. */
  poll(): Promise<void> {
    this.#polling ??= this.#pollOnce().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #pollOnce(): Promise<void> {
    const { store } = this.#o;
    try {
      if (!this.#unsubscribe) await this.#subscribe();
      const doc = this.#o.parseKeyring(await store.get(KEYRING_KEY));
      if (doc && doc.generation !== this.#o.generation()) await this.#o.reloadKeyring(doc);
      const revGeneration = Number((await store.get(REVOCATION_GENERATION_KEY)) ?? 0);
      if (revGeneration !== this.#o.revocations.generation)
        await this.#o.revocations.load(store, this.#o.now());
      this.#o.revocations.prune(this.#o.now());
      this.#status.generation = this.#o.generation();
      this.#status.lastSuccessAt = this.#o.now();
      this.#status.stale = false;
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    const error =
      err instanceof KeywardError ? err : new KeywardError('store_error', 'sync failed', { cause: err });
    this.#status.lastError = `${error.code}: ${error.message}`;
    this.#status.lastErrorAt = this.#o.now();
    this.#status.stale = true;
    this.#o.onError?.(error);
  }

  /** Current sync status. */
  status(): SyncStatus {
    return { ...this.#status, generation: this.#o.generation() };
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
