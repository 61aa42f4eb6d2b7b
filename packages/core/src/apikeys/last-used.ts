import type { KeywardLogger } from '../options.js';
import type { Store } from '../store/types.js';
import { storeKeys } from './record.js';

/**
 * Collects "key X was used at T" in memory and writes them in one batch per interval, so a busy
 * key costs one store write per interval instead of one per request.
 */
export class LastUsedBatcher {
  readonly #pending = new Map<string, number>();
  readonly #store: Store;
  readonly #logger: KeywardLogger;
  #timer: ReturnType<typeof setInterval> | undefined;
  #flushing: Promise<void> | undefined;

  constructor(store: Store, logger: KeywardLogger, intervalMs: number) {
    this.#store = store;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    // A pending batch must not keep the process alive; close() flushes it.
    this.#timer.unref();
  }

  mark(id: string, at: number): void {
    const previous = this.#pending.get(id);
    if (previous === undefined || at > previous) this.#pending.set(id, at);
  }

  /** The not yet written time of `id`, if any. */
  pending(id: string): number | undefined {
    return this.#pending.get(id);
  }

  /** Writes every pending time. Never rejects: a failed write is kept for the next flush. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    const results = await Promise.allSettled(
      batch.map(([id, at]) => this.#store.set(storeKeys.lastUsed(id), String(at))),
    );
    let failed = 0;
    results.forEach((result, i) => {
      const entry = batch[i];
      if (result.status === 'fulfilled' || !entry) return;
      failed += 1;
      this.mark(entry[0], entry[1]);
    });
    if (failed > 0) this.#logger.warn(`keyward api keys: ${failed} last-used writes failed; retrying later`);
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
