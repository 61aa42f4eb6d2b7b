import { KeywardError } from '../errors.js';
import type { Store } from '../store/types.js';
import type { KeyMaterial } from './generate.js';
import type { UnsealedKey } from './keyring.js';
import type { MasterKey } from './master-key.js';
import { sealKeyMaterial, unsealKeyMaterial } from './seal.js';
import type { KeyRecord } from './types.js';

/** Store key of the keyring document. */
export const KEYRING_KEY = 'keyring';
/**
 * Store key holding the keyring document's generation alone, written after each document CAS, so
 * pollers check a few bytes instead of reading and parsing the whole document.
 */
export const KEYRING_GENERATION_KEY = 'keyring-generation';
/** Channel on which every committed change is announced. */
export const EVENTS_CHANNEL = 'events';

/**
 * A key as stored: its public record plus its material sealed under the master key. A destroyed
 * key (`destroyedAt` set) has no `sealed` blob any more: only its record is kept, for audit.
 */
export interface StoredKey extends KeyRecord {
  sealed?: string;
}

/** Result of an idempotent operation, remembered in the document itself so a retry returns it. */
export interface RememberedOperation {
  key: string;
  at: number;
  result: Record<string, string | undefined>;
}

/**
 * The whole keyring as one store document. Keeping it in one value makes every lifecycle change
 * (rotate, revoke + promote) a single compare-and-set: it commits whole or not at all, and a
 * stale writer's CAS fails on the generation it read.
 */
export interface KeyringDocument {
  v: 1;
  generation: number;
  masterKeyId: string;
  updatedAt: number;
  keys: StoredKey[];
  operations: RememberedOperation[];
  /**
   * Highest lock fencing token that wrote this document (scheduler writes). A scheduled write
   * carrying a lower token comes from a holder whose lock expired: it is refused (`lock_lost`).
   */
  fence?: number;
}

/** Options of {@link KeyringRepository.update}. */
export interface KeyringUpdateOptions {
  /** Fencing token of the lock the writer holds; refused with `lock_lost` if a higher one already wrote. */
  fence?: number;
  /** CAS attempts before `store_conflict`. Default 20. */
  maxAttempts?: number;
}

/** What a mutation returns: the new record list, material for new keys, and an optional remembered result. */
export interface KeyringChange {
  records: KeyRecord[];
  added?: Array<{ record: KeyRecord; material: KeyMaterial }>;
  remember?: RememberedOperation;
}

const MAX_REMEMBERED = 50;

/** Reads and writes the keyring document: sealing, unsealing, compare-and-set with retries. */
export class KeyringRepository {
  readonly #store: Store;
  readonly #master: MasterKey;
  readonly #now: () => number;

  constructor(store: Store, master: MasterKey, now: () => number = Date.now) {
    this.#store = store;
    this.#master = master;
    this.#now = now;
  }

  /** Reads the document (`null` when no keyring exists yet). Throws `master_key_mismatch` for a foreign master key. */
  async read(): Promise<KeyringDocument | null> {
    return this.parse(await this.#store.get(KEYRING_KEY));
  }

  /** Parses a raw document as read from the store (checks format and master key). */
  parse(raw: string | null): KeyringDocument | null {
    if (raw === null) return null;
    let doc: KeyringDocument;
    try {
      doc = JSON.parse(raw) as KeyringDocument;
    } catch (cause) {
      throw new KeywardError('store_error', 'the stored keyring document is not valid JSON', { cause });
    }
    if (doc?.v !== 1 || !Array.isArray(doc.keys) || typeof doc.generation !== 'number') {
      throw new KeywardError('store_error', 'the stored keyring document has an unknown format');
    }
    doc.operations ??= [];
    if (doc.masterKeyId !== this.#master.id) {
      throw new KeywardError(
        'master_key_mismatch',
        `the keyring was sealed by master key ${doc.masterKeyId}, but the configured master key is ${this.#master.id}`,
      );
    }
    return doc;
  }

  /**
   * Unseals every key of a document. With `cache` (kept by the caller across calls), a key whose
   * sealed blob is unchanged reuses its material, so a new generation costs one unseal per new key
   * instead of one per key; the cache is pruned to the document's keys.
   */
  unseal(
    doc: KeyringDocument,
    cache?: Map<string, { sealed: string; material: KeyMaterial }>,
  ): UnsealedKey[] {
    const keys = materialKeys(doc).map(({ sealed, ...record }) => {
      const hit = cache?.get(record.kid);
      if (hit?.sealed === sealed) return { record, material: hit.material };
      const material = JSON.parse(
        unsealKeyMaterial(this.#master, record, sealed).toString('utf8'),
      ) as KeyMaterial;
      cache?.set(record.kid, { sealed, material });
      return { record, material };
    });
    if (cache && cache.size > keys.length) {
      const live = new Set(keys.map((k) => k.record.kid));
      for (const kid of cache.keys()) if (!live.has(kid)) cache.delete(kid);
    }
    return keys;
  }

  /** Seals a key for storage. */
  seal(record: KeyRecord, material: KeyMaterial): StoredKey {
    return {
      ...record,
      sealed: sealKeyMaterial(this.#master, record, Buffer.from(JSON.stringify(material))),
    };
  }

  /**
   * Applies a change with compare-and-set, re-reading and retrying on conflict. The mutator may
   * run several times; it gets the current document (`null` if none) and returns the change, or
   * `undefined` for "nothing to do". Publishes the new generation on success.
   */
  async update(
    mutate: (doc: KeyringDocument | null) => Promise<KeyringChange | undefined> | KeyringChange | undefined,
    options: KeyringUpdateOptions = {},
  ): Promise<{ doc: KeyringDocument; changed: boolean; remembered?: RememberedOperation }> {
    const { fence, maxAttempts = 20 } = options;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const raw = await this.#store.get(KEYRING_KEY);
      const current = this.parse(raw);
      if (fence !== undefined && (current?.fence ?? 0) > fence) {
        throw new KeywardError(
          'lock_lost',
          `a newer lock holder (fencing token ${current?.fence}) already wrote the keyring; this writer's token is ${fence}`,
          { details: { fence, storedFence: current?.fence } },
        );
      }
      const change = await mutate(current);
      if (!change) {
        if (!current) throw new KeywardError('key_not_found', 'no keyring exists yet');
        return { doc: current, changed: false };
      }
      const sealedByKid = new Map((current?.keys ?? []).map((k) => [k.kid, k.sealed]));
      for (const added of change.added ?? [])
        sealedByKid.set(added.record.kid, this.seal(added.record, added.material).sealed);
      const keys = change.records.map((record): StoredKey => {
        // A destroyed key keeps its record only: its sealed blob leaves the document for good.
        if (record.destroyedAt !== undefined) return { ...record };
        const sealed = sealedByKid.get(record.kid);
        if (!sealed) throw new KeywardError('key_not_found', `no material for key ${record.kid}`);
        return { ...record, sealed };
      });
      const operations = [...(current?.operations ?? [])];
      if (change.remember) operations.push(change.remember);
      const next: KeyringDocument = {
        v: 1,
        generation: (current?.generation ?? 0) + 1,
        masterKeyId: this.#master.id,
        updatedAt: this.#now(),
        keys,
        operations: operations.slice(-MAX_REMEMBERED),
      };
      const highestFence = Math.max(current?.fence ?? 0, fence ?? 0);
      if (highestFence > 0) next.fence = highestFence;
      if (await this.#store.compareAndSet(KEYRING_KEY, raw, JSON.stringify(next))) {
        // Both are hints: a failure here is repaired by pollers, which re-read the document itself
        // every few polls, and by the next write.
        await raiseGeneration(this.#store, next.generation).catch(() => undefined);
        await this.#store
          .publish(
            EVENTS_CHANNEL,
            JSON.stringify({ type: 'keyring', generation: next.generation, at: this.#now() }),
          )
          .catch(() => undefined);
        return change.remember
          ? { doc: next, changed: true, remembered: change.remember }
          : { doc: next, changed: true };
      }
    }
    throw new KeywardError(
      'store_conflict',
      `the keyring changed concurrently ${maxAttempts} times in a row; try again`,
    );
  }
}

/** The stored keys that still hold material (every key but destroyed ones). */
function materialKeys(doc: KeyringDocument): Array<StoredKey & { sealed: string }> {
  return doc.keys.filter((k): k is StoredKey & { sealed: string } => typeof k.sealed === 'string');
}

/**
 * The records of destroyed keys (no material left), which a keyring snapshot lists for audit.
 *
 * @example
 * ```ts
 * destroyedRecords(doc).map((r) => r.kid)
 * ```
 */
export function destroyedRecords(doc: KeyringDocument): KeyRecord[] {
  return doc.keys.filter((k) => typeof k.sealed !== 'string').map(({ sealed: _sealed, ...record }) => record);
}

/**
 * Raises the stored generation hint to `generation`, never lowering it: two writers that commit
 * generations 5 and 6 may write their hints in either order.
 */
async function raiseGeneration(store: Store, generation: number): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const raw = await store.get(KEYRING_GENERATION_KEY);
    if (raw !== null && Number(raw) >= generation) return;
    if (await store.compareAndSet(KEYRING_GENERATION_KEY, raw, String(generation))) return;
  }
}
