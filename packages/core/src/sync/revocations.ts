import { storeEntries } from '../store/entries.js';
import type { Store } from '../store/types.js';

/** Store collection of token-level revocations: `revoked:jti/<encoded jti>` → `until` (epoch ms). */
export const REVOCATION_JTI_PREFIX = 'revoked:jti/';
/** Store collection of subject revocations: `revoked:sub/<base64url sub>` → `{"notBefore","until"}`. */
export const REVOCATION_SUB_PREFIX = 'revoked:sub/';
/** Store counter bumped by every revocation, polled to repair lost announcements. */
export const REVOCATION_GENERATION_KEY = 'revoked-generation';
/**
 * Private claim of a token issued for a subject less than the clock skew after its not-before
 * ("logout everywhere"): the not-before (epoch ms) its issuer already knew. Such a token is not
 * revoked by that not-before, while a token minted by an instance whose clock runs ahead, before it
 * learnt the not-before, is.
 */
export const SUBJECT_ACK_CLAIM = 'kw_snb';

/** A revocation as announced on the events channel and as exported by {@link RevocationSet.entries}. */
export type RevocationEvent =
  /** One token, until `until` (epoch ms; its `exp`). */
  | { type: 'revoke-jti'; jti: string; until: number }
  /**
   * Every token of `sub` issued up to `notBefore` (epoch ms), kept until `until` (epoch ms), by
   * which every token it can revoke has expired (`notBefore + maxTokenTtl + clockSkew`).
   */
  | { type: 'revoke-subject'; sub: string; notBefore: number; until: number };

/** Options of {@link RevocationSet}. */
export interface RevocationSetOptions {
  /**
   * Clock difference (ms) tolerated between instances: a token whose `iat` is up to this after a
   * subject's not-before is still revoked, unless its issuer knew the not-before
   * ({@link SUBJECT_ACK_CLAIM}). Default 0.
   */
  clockSkewMs?: number;
  /**
   * Entries are kept this long past their `until`, because verifiers accept a token for their clock
   * tolerance after its `exp`. Default 0.
   */
  graceMs?: number;
  /** `until` of a subject record written without one (older versions): `notBefore` + this. Default: forever. */
  subjectRetainMs?: number;
}

interface SubjectEntry {
  readonly notBefore: number;
  readonly until: number;
}

interface Expiry {
  /** Epoch ms after which the entry may go. */
  readonly at: number;
  readonly jti: boolean;
  readonly id: string;
}

/** A binary min-heap of expiries, so pruning touches only what is due. */
class ExpiryQueue {
  readonly #items: Expiry[] = [];

  push(item: Expiry): void {
    const items = this.#items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= item.at) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  peek(): Expiry | undefined {
    return this.#items[0];
  }

  pop(): Expiry | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.at < items[left]!.at ? right : left;
      if (items[child]!.at >= last.at) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  get size(): number {
    return this.#items.length;
  }
}

const JTI_PLAIN = /^[A-Za-z0-9_-]+$/;

/**
 * Encodes a jti for its store key so it never contains `/`: base64url-alphabet jtis (keyward's
 * own) stay as they are, anything else becomes `~` + base64url (`~` is not in that alphabet, so
 * the encoding is one-to-one).
 */
export function encodeJtiKey(jti: string): string {
  return JTI_PLAIN.test(jti) ? jti : `~${Buffer.from(jti, 'utf8').toString('base64url')}`;
}

function decodeJtiKey(id: string): string | undefined {
  if (!id.startsWith('~')) return JTI_PLAIN.test(id) ? id : undefined;
  return decodeB64(id.slice(1));
}

/** Encodes a subject for its store key: base64url of its UTF-8 bytes (never contains `/`). */
export function encodeSubjectKey(sub: string): string {
  return Buffer.from(sub, 'utf8').toString('base64url');
}

function decodeB64(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64url').toString('utf8');
  // Only a canonical encoding round-trips; anything else was not written by keyward.
  return Buffer.from(decoded, 'utf8').toString('base64url') === text ? decoded : undefined;
}

/**
 * The in-memory revocation set each instance holds, so verifying stays free of I/O: revoked
 * `jti`s and per-subject not-before times ("logout everywhere"), each kept until every token it
 * revokes has expired (plus the grace), then pruned in expiry order.
 *
 * The set only grows between prunes: an announcement, a poll and a reload can add revocations,
 * never remove one, so a revocation once seen is never forgotten before its expiry. Its
 * {@link RevocationSet.generation} moves only forward: it is the highest store generation up to
 * which every revocation is known to be applied. Announcements above it are remembered, and it
 * advances over them once they are contiguous, however they arrived (out of order, during a reload).
 */
export class RevocationSet {
  readonly #jti = new Map<string, number>();
  readonly #subjects = new Map<string, SubjectEntry>();
  readonly #queue = new ExpiryQueue();
  /** Generations applied above {@link RevocationSet.generation} (a gap below them). */
  readonly #ahead = new Set<number>();
  readonly #skew: number;
  readonly #grace: number;
  readonly #subjectRetain: number;
  #generation = 0;

  constructor(options: RevocationSetOptions = {}) {
    this.#skew = options.clockSkewMs ?? 0;
    this.#grace = options.graceMs ?? 0;
    this.#subjectRetain = options.subjectRetainMs ?? Number.POSITIVE_INFINITY;
  }

  /** Store generation up to which every revocation is applied here. Never decreases (see {@link RevocationSet.rebase}). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Applies one revocation and records its store `generation` when known (announcements and
   * this instance's own writes). Returns whether the set changed (an instance also hears its own
   * announcements, and a duplicate changes nothing).
   */
  apply(event: RevocationEvent, generation?: number): boolean {
    const changed =
      event.type === 'revoke-jti'
        ? this.#addJti(event.jti, event.until)
        : this.#addSubject(
            event.sub,
            event.notBefore,
            Number.isFinite(event.until) ? event.until : event.notBefore + this.#subjectRetain,
          );
    if (generation !== undefined) this.#see(generation);
    return changed;
  }

  #addJti(jti: string, until: number): boolean {
    const held = this.#jti.get(jti);
    if (held !== undefined && held >= until) return false;
    this.#jti.set(jti, until);
    this.#queue.push({ at: until + this.#grace, jti: true, id: jti });
    return true;
  }

  #addSubject(sub: string, notBefore: number, until: number): boolean {
    const held = this.#subjects.get(sub);
    if (held !== undefined && held.notBefore >= notBefore && held.until >= until) return false;
    const next =
      held === undefined
        ? { notBefore, until }
        : { notBefore: Math.max(held.notBefore, notBefore), until: Math.max(held.until, until) };
    this.#subjects.set(sub, next);
    this.#queue.push({ at: next.until + this.#grace, jti: false, id: sub });
    return true;
  }

  #see(generation: number): void {
    if (!Number.isInteger(generation) || generation <= this.#generation) return;
    this.#ahead.add(generation);
    this.#advance();
  }

  #advance(): void {
    while (this.#ahead.delete(this.#generation + 1)) this.#generation++;
  }

  /** Marks every generation up to `generation` as applied (a reload that listed the store after reading it). */
  #covered(generation: number): void {
    if (generation > this.#generation) {
      this.#generation = generation;
      for (const g of this.#ahead) if (g <= generation) this.#ahead.delete(g);
    }
    this.#advance();
  }

  /**
   * Moves the generation back to `generation` when the store's counter is behind it (the store
   * lost its data); the revocations held stay. The only way the generation decreases.
   */
  rebase(generation: number): void {
    if (generation >= this.#generation) return;
    this.#generation = Math.max(0, generation);
    this.#ahead.clear();
  }

  /**
   * The verifier's view: `token_revoked` for a revoked jti, or for a token of a subject issued up
   * to its not-before plus the clock skew (unless its issuer knew the not-before). Allocation-free, O(1).
   */
  check(claims: {
    jti?: string;
    sub?: string;
    iat?: number;
    readonly [SUBJECT_ACK_CLAIM]?: unknown;
  }): 'token_revoked' | undefined {
    if (claims.jti !== undefined && this.#jti.size > 0 && this.#jti.has(claims.jti)) return 'token_revoked';
    if (claims.sub !== undefined && this.#subjects.size > 0) {
      const entry = this.#subjects.get(claims.sub);
      if (entry === undefined) return undefined;
      const iat = claims.iat;
      // iat is in seconds; a token issued in the same second as logout-everywhere is revoked too.
      if (typeof iat !== 'number' || iat * 1000 <= entry.notBefore) return 'token_revoked';
      if (iat * 1000 <= entry.notBefore + this.#skew) {
        const ack = claims[SUBJECT_ACK_CLAIM];
        if (typeof ack !== 'number' || ack < entry.notBefore) return 'token_revoked';
      }
    }
    return undefined;
  }

  /** The subject's not-before (epoch ms) from "logout everywhere", if any. */
  subjectNotBefore(sub: string): number | undefined {
    return this.#subjects.size > 0 ? this.#subjects.get(sub)?.notBefore : undefined;
  }

  /**
   * Every revocation the set holds (pruned ones excluded), as events that {@link persistRevocation}
   * can write again, e.g. to re-publish revocations after the store lost its data. Iterates live.
   *
   * @example
   * ```ts
   * for (const event of set.entries()) await persistRevocation(store, event, Date.now())
   * ```
   */
  *entries(): IterableIterator<RevocationEvent> {
    for (const [jti, until] of this.#jti) yield { type: 'revoke-jti', jti, until };
    for (const [sub, { notBefore, until }] of this.#subjects)
      yield { type: 'revoke-subject', sub, notBefore, until };
  }

  /**
   * Drops entries whose tokens have all expired (`until` + grace ≤ `now`), in expiry order: only
   * due entries are touched.
   */
  prune(now: number): void {
    const queue = this.#queue;
    for (let next = queue.peek(); next !== undefined && next.at <= now; next = queue.peek()) {
      queue.pop();
      // A later revocation of the same id pushed its own expiry; only the latest one removes it.
      if (next.jti) {
        const until = this.#jti.get(next.id);
        if (until !== undefined && until + this.#grace <= now) this.#jti.delete(next.id);
      } else {
        const entry = this.#subjects.get(next.id);
        if (entry !== undefined && entry.until + this.#grace <= now) this.#subjects.delete(next.id);
      }
    }
  }

  /**
   * Merges what the store holds into the set (start-up and poll repair); never removes anything.
   * `generation` is the store generation read before listing (read here when absent): what the
   * listing covers, so the set's generation moves to it, never past it. Resolves how many entries
   * were added or extended. Two collection listings: O(revocations), never O(database).
   */
  async load(store: Store, now: number, generation?: number): Promise<number> {
    const covers = generation ?? readGeneration(await store.get(REVOCATION_GENERATION_KEY));
    let changed = 0;
    for (const prefix of [REVOCATION_JTI_PREFIX, REVOCATION_SUB_PREFIX]) {
      for await (const { key, value } of storeEntries(store, 'list', prefix)) {
        const event = parseRecord(key, value, this.#subjectRetain);
        if (event === undefined || event.until + this.#grace <= now) continue;
        if (this.apply(event)) changed++;
      }
    }
    this.#covered(covers);
    return changed;
  }

  /** Number of revoked jtis and subjects held (for metrics and health). */
  get size(): { jti: number; subjects: number } {
    return { jti: this.#jti.size, subjects: this.#subjects.size };
  }
}

/** Parses the store's generation counter (absent or garbage = 0). */
export function readGeneration(raw: string | null): number {
  const n = Number(raw ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

function parseRecord(key: string, value: string, subjectRetainMs: number): RevocationEvent | undefined {
  if (key.startsWith(REVOCATION_JTI_PREFIX)) {
    const jti = decodeJtiKey(key.slice(REVOCATION_JTI_PREFIX.length));
    const until = Number(value);
    return jti === undefined || !Number.isFinite(until) ? undefined : { type: 'revoke-jti', jti, until };
  }
  if (!key.startsWith(REVOCATION_SUB_PREFIX)) return undefined;
  const sub = decodeB64(key.slice(REVOCATION_SUB_PREFIX.length));
  if (sub === undefined) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof record === 'number') record = { notBefore: record };
  const { notBefore, until } = (record ?? {}) as { notBefore?: unknown; until?: unknown };
  if (typeof notBefore !== 'number' || !Number.isFinite(notBefore)) return undefined;
  return {
    type: 'revoke-subject',
    sub,
    notBefore,
    until: typeof until === 'number' && Number.isFinite(until) ? until : notBefore + subjectRetainMs,
  };
}

/** Options of {@link persistRevocation}. */
export interface PersistRevocationOptions {
  /** The store keeps the record this long past its `until` (the verifiers' clock tolerance). Default 0. */
  graceMs?: number;
}

/**
 * Persists a revocation (with a TTL ending when every token it revokes has expired, plus the
 * grace), bumps the generation counter and announces it (with the new generation, so receivers
 * that saw every announcement skip the reload). Resolves the new generation.
 *
 * @example
 * ```ts
 * await persistRevocation(store, { type: 'revoke-jti', jti, until: exp * 1000 }, Date.now())
 * ```
 */
export async function persistRevocation(
  store: Store,
  event: RevocationEvent,
  now: number,
  options: PersistRevocationOptions = {},
): Promise<number> {
  const end = event.until + (options.graceMs ?? 0);
  const ttl = Number.isFinite(end) ? { ttlMs: Math.max(1000, end - now) } : {};
  if (event.type === 'revoke-jti') {
    await store.set(`${REVOCATION_JTI_PREFIX}${encodeJtiKey(event.jti)}`, String(event.until), ttl);
  } else {
    const record = JSON.stringify({ notBefore: event.notBefore, until: event.until });
    await store.set(`${REVOCATION_SUB_PREFIX}${encodeSubjectKey(event.sub)}`, record, ttl);
  }
  const generation = await store.increment(REVOCATION_GENERATION_KEY);
  await store.publish('events', JSON.stringify({ ...event, generation, at: now })).catch(() => undefined);
  return generation;
}
