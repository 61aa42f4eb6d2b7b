import type { Store, StoreEntry } from './types.js';

/**
 * Every entry of a collection (`list`, O(members)) or under a prefix (`scan`, a background walk),
 * page after page. On Redis a `scan` may yield a key twice while the server resizes its table:
 * callers that count or must not act twice dedupe by key.
 *
 * @example
 * ```ts
 * for await (const { key, value } of storeEntries(store, 'list', 'apikey-owner:b3du/')) ids.push(key)
 * ```
 */
export async function* storeEntries(
  store: Pick<Store, 'list' | 'scan'>,
  how: 'list' | 'scan',
  prefix: string,
  options: { limit?: number } = {},
): AsyncGenerator<StoreEntry> {
  let cursor: string | undefined;
  do {
    const page = await store[how](prefix, cursor === undefined ? options : { ...options, cursor });
    yield* page.entries;
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined);
}
