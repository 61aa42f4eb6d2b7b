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
 * Eviction is CLOCK (second chance) over a ring of the entries: a hit marks its entry; when the
 * cache is full, the hand clears marks until it finds an unmarked entry and replaces it. Every
 * operation is O(1) amortized — no walk over the `Map` — and a hit allocates nothing.
 *
 * Admission: once the cache is full, a token takes an entry's place only on its second sighting.
 * The first one is noted in a fixed array of slot numbers (a doorkeeper, as in TinyLFU), which
 * forgets everything after `max / 2` notes. A token used once, or a cycle of more tokens than the
 * cache holds, then no longer evicts the tokens that are being hit: without it, 20,000 tokens in
 * turn through a 10,000-entry cache missed every time, and each miss allocated an entry and kept a
 * verified token alive long enough to reach the old generation (in `bench:http`, a miss that evicted
 * cost about 5 µs more than the cache off). The price is one more verification of a new token
 * while the cache is full.
 */
export class VerifiedTokenCache<V> {
  readonly #max: number;
  readonly #slots = new Map<number, Entry<V>>();
  /** Every entry at its ring position; `undefined` where one was deleted (listed in `#free`). */
  #ring: Array<Entry<V> | undefined> = [];
  #free: number[] = [];
  #hand = 0;
  /** First sightings while full: `slot | SEEN` at `slot & (length - 1)`; 0 where none. */
  readonly #seen: Int32Array;
  /** Notes in `#seen` since it was last emptied; at `#window` it is emptied before the next. */
  #noted = 0;
  readonly #window: number;

  /** @param max Most entries held; at least 1. */
  constructor(max: number) {
    this.#max = Math.max(1, max);
    // A power of two, at least max: `slot & (length - 1)` picks the place.
    this.#seen = new Int32Array(2 ** Math.ceil(Math.log2(this.#max)));
    this.#window = Math.max(1, Math.floor(this.#max / 2));
  }

  /** The value cached for exactly `token`, or `undefined`. */
  get(token: string): V | undefined {
    const entry = this.#slots.get(slotOf(token));
    if (entry === undefined || entry.token !== token) return undefined;
    entry.hot = true;
    return entry.value;
  }

  /**
   * Caches `value` for `token`, replacing what held its slot. When the cache is full, a token seen
   * for the first time (since the doorkeeper last forgot) is only noted, not cached.
   */
  set(token: string, value: V): void {
    const slot = slotOf(token);
    const held = this.#slots.get(slot);
    if (held !== undefined) {
      held.token = token;
      held.value = value;
      held.hot = false;
      return;
    }
    let position = this.#free.pop();
    if (position === undefined) {
      if (this.#ring.length < this.#max) position = this.#ring.length;
      else if (this.#admit(slot)) position = this.#evict();
      else return;
    }
    const entry: Entry<V> = { slot, position, token, value, hot: false };
    this.#ring[position] = entry;
    this.#slots.set(slot, entry);
  }

  /** Forgets `token`. */
  delete(token: string): void {
    const entry = this.#slots.get(slotOf(token));
    if (entry?.token === token) this.#remove(entry);
  }

  /** Forgets every entry whose value `drop` selects. */
  deleteWhere(drop: (value: V) => boolean): void {
    for (const entry of this.#slots.values()) if (drop(entry.value)) this.#remove(entry);
  }

  /** Forgets everything. */
  clear(): void {
    this.#slots.clear();
    this.#ring = [];
    this.#free = [];
    this.#hand = 0;
    this.#seen.fill(0);
    this.#noted = 0;
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.#slots.size;
  }

  #remove(entry: Entry<V>): void {
    this.#slots.delete(entry.slot);
    this.#ring[entry.position] = undefined;
    this.#free.push(entry.position);
  }

  /** Whether `slot` was noted since the doorkeeper last forgot; notes it if not. */
  #admit(slot: number): boolean {
    const seen = this.#seen;
    const at = slot & (seen.length - 1);
    const mark = slot | SEEN;
    if (seen[at] === mark) return true;
    if (this.#noted >= this.#window) {
      seen.fill(0);
      this.#noted = 0;
    }
    seen[at] = mark;
    this.#noted++;
    return false;
  }

  /** Frees the position of the first unmarked entry from the hand on, clearing marks on the way. */
  #evict(): number {
    // The ring is full (no free position), so every position holds an entry; each marked one is
    // passed at most once before its mark is gone: this ends within one turn and a step.
    for (;;) {
      const position = this.#hand;
      this.#hand = position + 1 === this.#ring.length ? 0 : position + 1;
      const entry = this.#ring[position] as Entry<V>;
      if (entry.hot) {
        entry.hot = false;
        continue;
      }
      this.#slots.delete(entry.slot);
      return position;
    }
  }
}

/** Set in every note of `#seen` (slots use 30 bits), so a note is never 0. */
const SEEN = 0x40000000;

interface Entry<V> {
  readonly slot: number;
  readonly position: number;
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
