import { randomBytes } from 'node:crypto';
import { KeywardError } from '../errors.js';
import type { Store } from '../store/types.js';
import type { KeyMaterial } from './generate.js';
import type { UnsealedKey } from './keyring.js';
import type { MasterKey } from './master-key.js';
import { sealKeyMaterial, unsealKeyMaterial } from './seal.js';
import type { KeyRecord } from './types.js';

/** Store key of the keyring document (a member of the `keyring/` collection). */
export const KEYRING_KEY = 'keyring/doc';
/**
 * Store key holding the keyring document's generation alone, written after each document CAS, so
 * pollers check a few bytes instead of reading and parsing the whole document. In the same
 * collection as {@link KEYRING_KEY}, so both share one Redis Cluster slot.
 */
export const KEYRING_GENERATION_KEY = 'keyring/generation';
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
   * Id of the keyring's lineage: random, given when the keyring is first created, and kept by
   * every later write. Two documents of one lineage are versions of one keyring; a document of
   * another lineage is another keyring (created separately, e.g. after store data loss) and is
   * never adopted by an instance that holds one. A document written before lineages existed has
   * none; it gets one on its next write (see {@link sameLineage}).
   */
  lineage?: string;
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
  /**
   * May create the keyring when the store holds none (bootstrap, restore). Refused with
   * `keyring_lost` anyway when this repository holds a keyring ({@link KeyringRepository.hold}):
   * an instance that has a keyring never creates a second one.
   */
  create?: boolean;
  /** Lineage to give the written document (restore of a backup). Default: the current one's, else the held one's, else a new one. */
  lineage?: string;
}

/** A new random lineage id. */
export function newLineage(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * True when `doc` continues the keyring `held` (one lineage). When either has no lineage (written
 * before lineages existed, or by an older keyward), they are one keyring when they share a key id:
 * kids are thumbprints of fresh keys or random, so two separately created keyrings share none.
 */
export function sameLineage(
  held: Pick<KeyringDocument, 'lineage' | 'keys'>,
  doc: Pick<KeyringDocument, 'lineage' | 'keys'>,
): boolean {
  if (held.lineage !== undefined && doc.lineage !== undefined) return held.lineage === doc.lineage;
  const kids = new Set(held.keys.map((k) => k.kid));
  return doc.keys.some((k) => kids.has(k.kid));
}

/** What a mutation returns: the new record list, material for new keys, and an optional remembered result. */
export interface KeyringChange {
  records: KeyRecord[];
  added?: Array<{ record: KeyRecord; material: KeyMaterial }>;
  remember?: RememberedOperation;
}

const MAX_REMEMBERED = 50;

/** What {@link KeyringRepository.rekey} did. */
export interface RekeyResult {
  /** The document after the call (unchanged when it was already sealed by the current key). */
  doc: KeyringDocument;
  /** False when the keyring was already sealed by the current master key (nothing written). */
  changed: boolean;
  /** Id of the master key that sealed the keyring before the call. */
  previousMasterKeyId: string;
  /** Id of the master key that seals it now. */
  masterKeyId: string;
}

/**
 * Reads and writes the keyring document: sealing, unsealing, compare-and-set with retries.
 *
 * `master` is the current master key, or a list whose first entry is the current key and whose
 * others are previous keys (during a master-key rotation). A document sealed by any of them opens;
 * a new document is sealed by the current key, and a change to an existing document is sealed by
 * the key that sealed it, so a document is always sealed by one key. Only {@link rekey} moves it
 * to the current key.
 */
export class KeyringRepository {
  readonly #store: Store;
  readonly #master: MasterKey;
  readonly #keys: readonly MasterKey[];
  readonly #now: () => number;
  #held: KeyringDocument | undefined;

  constructor(store: Store, master: MasterKey | readonly MasterKey[], now: () => number = Date.now) {
    this.#store = store;
    const keys = Array.isArray(master) ? (master as readonly MasterKey[]) : [master as MasterKey];
    const [current] = keys;
    if (!current) throw new KeywardError('master_key_invalid', 'no master key given');
    this.#master = current;
    this.#keys = keys;
    this.#now = now;
  }

  /**
   * Records the document this instance now serves from. From then on {@link update} refuses to
   * create a keyring (`keyring_lost`) or to write over one of another lineage
   * (`keyring_lineage_mismatch`), and {@link republish} can put it back.
   */
  hold(doc: KeyringDocument): void {
    this.#held = doc;
  }

  /**
   * Throws unless `current` (as read from the store) continues the held keyring: `keyring_lost`
   * when the store holds none although this instance holds one, `keyring_lineage_mismatch` when it
   * holds one of another lineage. Passes when nothing is held yet.
   */
  assertContinues(current: KeyringDocument | null): void {
    const held = this.#held;
    if (!held) return;
    if (current === null)
      throw new KeywardError(
        'keyring_lost',
        'the store holds no keyring although this instance holds one (store data lost?); refusing to create another, sync re-publishes the held one',
      );
    if (!sameLineage(held, current))
      throw new KeywardError(
        'keyring_lineage_mismatch',
        'the store holds a keyring of another lineage than the one this instance holds; refusing to write over it',
        { details: { held: held.lineage, stored: current.lineage } },
      );
  }

  /** The document this instance serves from (see {@link hold}), if any. */
  get held(): KeyringDocument | undefined {
    return this.#held;
  }

  /**
   * Writes the held document back with compare-and-set over `expected` (`null`: only if the store
   * holds no keyring, so of several instances exactly one wins). Used when the store lost the
   * keyring, or went back to an older generation of it. Resolves `true` when this write won.
   */
  async republish(expected: string | null): Promise<boolean> {
    const held = this.#held;
    if (!held) throw new KeywardError('key_not_found', 'this instance holds no keyring to re-publish');
    const doc: KeyringDocument = { ...held, lineage: held.lineage ?? newLineage(), updatedAt: this.#now() };
    if (!(await this.#store.compareAndSet(KEYRING_KEY, expected, JSON.stringify(doc)))) return false;
    this.#held = doc;
    await this.#announce(doc.generation);
    return true;
  }

  /** The master key among those held that sealed `doc`; `master_key_mismatch` naming the ids if none. */
  #keyFor(doc: Pick<KeyringDocument, 'masterKeyId'>): MasterKey {
    const key = this.#keys.find((k) => k.id === doc.masterKeyId);
    if (key) return key;
    const held = this.#keys.map((k) => k.id).join(', ');
    throw new KeywardError(
      'master_key_mismatch',
      this.#keys.length === 1
        ? `the keyring was sealed by master key ${doc.masterKeyId}, but the configured master key is ${held}`
        : `the keyring was sealed by master key ${doc.masterKeyId}, but the configured master keys are ${held}`,
      { details: { masterKeyId: doc.masterKeyId, configured: held } },
    );
  }

  /** Reads the document (`null` when no keyring exists yet). Throws `master_key_mismatch` for a foreign master key. */
  async read(): Promise<KeyringDocument | null> {
    return this.parse(await this.#store.get(KEYRING_KEY));
  }

  /** Parses a raw document as read from the store (checks format and master key). */
  parse(raw: string | null): KeyringDocument | null {
    const doc = this.#parseFormat(raw);
    if (doc) this.#keyFor(doc);
    return doc;
  }

  /** Parses a raw document, checking its format only (not which master key sealed it). */
  #parseFormat(raw: string | null): KeyringDocument | null {
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
    const master = this.#keyFor(doc);
    const keys = materialKeys(doc).map(({ sealed, ...record }) => {
      const hit = cache?.get(record.kid);
      if (hit?.sealed === sealed) return { record, material: hit.material };
      const material = JSON.parse(unsealKeyMaterial(master, record, sealed).toString('utf8')) as KeyMaterial;
      cache?.set(record.kid, { sealed, material });
      return { record, material };
    });
    if (cache && cache.size > keys.length) {
      const live = new Set(keys.map((k) => k.record.kid));
      for (const kid of cache.keys()) if (!live.has(kid)) cache.delete(kid);
    }
    return keys;
  }

  /** Seals a key for storage, under `master` (default: the current master key). */
  seal(record: KeyRecord, material: KeyMaterial, master: MasterKey = this.#master): StoredKey {
    return {
      ...record,
      sealed: sealKeyMaterial(master, record, Buffer.from(JSON.stringify(material))),
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
      const held = this.#held;
      this.assertContinues(current);
      if (current === null && !options.create)
        throw new KeywardError('key_not_found', 'no keyring exists yet');
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
      // New keys join the document under the key that sealed it (one key per document).
      const sealer = current ? this.#keyFor(current) : this.#master;
      const sealedByKid = new Map((current?.keys ?? []).map((k) => [k.kid, k.sealed]));
      for (const added of change.added ?? [])
        sealedByKid.set(added.record.kid, this.seal(added.record, added.material, sealer).sealed);
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
        masterKeyId: sealer.id,
        lineage: options.lineage ?? current?.lineage ?? held?.lineage ?? newLineage(),
        updatedAt: this.#now(),
        keys,
        operations: operations.slice(-MAX_REMEMBERED),
      };
      const highestFence = Math.max(current?.fence ?? 0, fence ?? 0);
      if (highestFence > 0) next.fence = highestFence;
      if (await this.#store.compareAndSet(KEYRING_KEY, raw, JSON.stringify(next))) {
        await this.#announce(next.generation);
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

  /**
   * Re-seals every key of the document under the current master key, in one compare-and-set
   * (retried on conflict). The document must be sealed by one of the held keys; when it already is
   * by the current key, nothing is written. Every re-sealed blob is opened again before the write.
   * Records, generation order, remembered operations and the fence are kept; only `sealed` and
   * `masterKeyId` change.
   */
  async rekey(options: { maxAttempts?: number } = {}): Promise<RekeyResult> {
    const { maxAttempts = 20 } = options;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const raw = await this.#store.get(KEYRING_KEY);
      const current = this.parse(raw);
      if (!current) throw new KeywardError('key_not_found', 'no keyring exists yet');
      const from = this.#keyFor(current);
      if (from.id === this.#master.id) {
        return { doc: current, changed: false, previousMasterKeyId: from.id, masterKeyId: from.id };
      }
      const keys = current.keys.map((stored): StoredKey => {
        const { sealed, ...record } = stored;
        // A destroyed data key has no material left to re-seal.
        if (sealed === undefined) return stored;
        const material = unsealKeyMaterial(from, record, sealed);
        const resealed = sealKeyMaterial(this.#master, record, material);
        if (!unsealKeyMaterial(this.#master, record, resealed).equals(material)) {
          throw new KeywardError('key_unseal_failed', `re-sealed key ${record.kid} does not open`, {
            details: { kid: record.kid },
          });
        }
        return { ...record, sealed: resealed };
      });
      const next: KeyringDocument = {
        ...current,
        generation: current.generation + 1,
        masterKeyId: this.#master.id,
        updatedAt: this.#now(),
        keys,
      };
      if (await this.#store.compareAndSet(KEYRING_KEY, raw, JSON.stringify(next))) {
        await this.#announce(next.generation);
        return { doc: next, changed: true, previousMasterKeyId: from.id, masterKeyId: this.#master.id };
      }
    }
    throw new KeywardError(
      'store_conflict',
      `the keyring changed concurrently ${maxAttempts} times in a row; try again`,
    );
  }

  /**
   * Replaces the whole keyring with `keys`, sealed under the current master key, whatever master
   * key sealed the stored document (restore). The generation moves above the stored one, so
   * running instances take the new document; remembered operations and the fence are kept. The
   * lineage is `options.lineage` (a backup's), else the stored document's, else a new one;
   * `options.destroyed` are records of destroyed data keys, kept without material.
   * `check` sees the stored document (`null` if none) first and may throw to refuse.
   */
  async replace(
    keys: readonly UnsealedKey[],
    check: (current: KeyringDocument | null) => void = () => undefined,
    options: { maxAttempts?: number; lineage?: string; destroyed?: readonly KeyRecord[] } = {},
  ): Promise<KeyringDocument> {
    const { maxAttempts = 20 } = options;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const raw = await this.#store.get(KEYRING_KEY);
      const current = this.#parseFormat(raw);
      check(current);
      const next: KeyringDocument = {
        ...(current ?? {}),
        v: 1,
        generation: (current?.generation ?? 0) + 1,
        masterKeyId: this.#master.id,
        lineage: options.lineage ?? current?.lineage ?? newLineage(),
        updatedAt: this.#now(),
        keys: [
          ...keys.map((k) => this.seal(k.record, k.material)),
          // Destroyed data keys keep their records only (no material left to seal).
          ...(options.destroyed ?? []).map((record): StoredKey => ({ ...record })),
        ],
        operations: current?.operations ?? [],
      };
      if (await this.#store.compareAndSet(KEYRING_KEY, raw, JSON.stringify(next))) {
        await this.#announce(next.generation);
        return next;
      }
    }
    throw new KeywardError(
      'store_conflict',
      `the keyring changed concurrently ${maxAttempts} times in a row; try again`,
    );
  }

  /** Announces a committed generation. */
  async #announce(generation: number): Promise<void> {
    // Both are hints: a failure here is repaired by pollers, which re-read the document itself
    // every few polls, and by the next write.
    await raiseGeneration(this.#store, generation).catch(() => undefined);
    await this.#store
      .publish(EVENTS_CHANNEL, JSON.stringify({ type: 'keyring', generation, at: this.#now() }))
      .catch(() => undefined);
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
