/**
 * The verified-token cache of the hot path.
 *
 * An `LRUCache<string, …>` keyed by the token hashes the whole token (300–400 characters) on every
 * lookup, because each request brings a new string, and then updates its recency lists: in
 * `bench/micro/cached.ts` that was a third of a cached authenticate. This cache reads six
 * characters of the signature instead — random in every validly signed token — and keys a `Map` by
 * the small integer they make; a hit then compares the whole token, so a different token with the
 * same six characters is a miss, never a wrong answer. Two cached tokens with the same key take
 * turns in one slot (a miss each, then a full verification): the only cost of a collision.
 *
 * Eviction is second-chance FIFO (CLOCK): a hit marks the entry; when full, the oldest unmarked
 * entry goes and marked ones move to the back unmarked. A hit allocates nothing.
 */
export class VerifiedTokenCache<V> {
  readonly #max: number;
  readonly #slots = new Map<number, Entry<V>>();

  /** @param max Most entries held; at least 1. */
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  /** The value cached for exactly `token`, or `undefined`. */
  get(token: string): V | undefined {
    const entry = this.#slots.get(slotOf(token));
    if (entry === undefined || entry.token !== token) return undefined;
    entry.hot = true;
    return entry.value;
  }

  /** Caches `value` for `token`, replacing what held its slot. */
  set(token: string, value: V): void {
    const slot = slotOf(token);
    const entry = this.#slots.get(slot);
    if (entry !== undefined) {
      entry.token = token;
      entry.value = value;
      entry.hot = false;
      return;
    }
    if (this.#slots.size >= this.#max) this.#evict();
    this.#slots.set(slot, { token, value, hot: false });
  }

  /** Forgets `token`. */
  delete(token: string): void {
    const slot = slotOf(token);
    if (this.#slots.get(slot)?.token === token) this.#slots.delete(slot);
  }

  /** Forgets every entry whose value `drop` selects. */
  deleteWhere(drop: (value: V) => boolean): void {
    for (const [slot, entry] of this.#slots) if (drop(entry.value)) this.#slots.delete(slot);
  }

  /** Forgets everything. */
  clear(): void {
    this.#slots.clear();
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.#slots.size;
  }

  #evict(): void {
    // Each marked entry is visited at most twice (once marked, once after moving back), so this
    // ends within `size + 1` steps.
    for (const [slot, entry] of this.#slots) {
      this.#slots.delete(slot);
      if (!entry.hot) return;
      entry.hot = false;
      this.#slots.set(slot, entry);
    }
  }
}

interface Entry<V> {
  token: string;
  value: V;
  hot: boolean;
}

/**
 * The slot of a token: six characters just before its last one (the last character of a
 * base64url signature carries only a few bits) and its length, folded into a small integer. A
 * short or odd token still gets a slot; the full compare on hit decides.
 */
function slotOf(token: string): number {
  const n = token.length;
  let h = n;
  for (let i = n - 7; i < n - 1; i++) h = (Math.imul(h, 67) + (i >= 0 ? token.charCodeAt(i) : 0)) | 0;
  return h & 0x3fffffff;
}
