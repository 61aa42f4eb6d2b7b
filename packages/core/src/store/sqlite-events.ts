import type Database from 'better-sqlite3';
import { deliver } from './arguments.js';
import type { StoreMessageHandler } from './types.js';

/** Pub/sub of one sqlite store: rows in `keyward_events`, polled only while someone listens. */
export interface SqliteEvents {
  publish(channel: string, message: string): void;
  subscribe(channel: string, handler: StoreMessageHandler): () => void;
  stop(): void;
}

/** Options of {@link createSqliteEvents}. */
export interface SqliteEventsOptions {
  ns: string;
  now: () => number;
  pollIntervalMs: number;
  retentionMs: number;
}

const BATCH = 1000;

/**
 * Creates the events poller of a sqlite store. Event ids come from AUTOINCREMENT, so they are
 * never reused after pruning and a poller can always resume from the last id it delivered.
 */
export function createSqliteEvents(db: Database.Database, options: SqliteEventsOptions): SqliteEvents {
  const { ns, now, pollIntervalMs, retentionMs } = options;
  const insert = db.prepare<{ ns: string; channel: string; message: string; now: number }>(
    'INSERT INTO keyward_events (ns, channel, message, created_at) VALUES (@ns, @channel, @message, @now)',
  );
  const lastId = db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM keyward_events');
  const after = db.prepare<{ ns: string; after: number }, { id: number; channel: string; message: string }>(
    `SELECT id, channel, message FROM keyward_events WHERE id > @after AND ns = @ns ORDER BY id LIMIT ${BATCH}`,
  );
  const prune = db.prepare<{ before: number }>('DELETE FROM keyward_events WHERE created_at < @before');

  const subscribers = new Map<string, Set<StoreMessageHandler>>();
  let poller: NodeJS.Timeout | undefined;
  let lastEventId = 0;
  let lastPrune = Number.NEGATIVE_INFINITY;

  function poll(): void {
    try {
      for (;;) {
        const rows = after.all({ ns, after: lastEventId });
        for (const row of rows) {
          lastEventId = row.id;
          for (const handler of [...(subscribers.get(row.channel) ?? [])]) deliver(handler, row.message);
        }
        if (rows.length < BATCH || subscribers.size === 0) return;
      }
    } catch {
      // A busy or briefly unreadable file: the next tick retries from the same event id.
    }
  }

  function stop(): void {
    if (poller !== undefined) clearInterval(poller);
    poller = undefined;
    subscribers.clear();
  }

  return {
    publish(channel, message) {
      const t = now();
      insert.run({ ns, channel, message, now: t });
      if (t - lastPrune >= retentionMs / 4) {
        lastPrune = t;
        prune.run({ before: t - retentionMs });
      }
    },
    subscribe(channel, handler) {
      if (poller === undefined) {
        lastEventId = lastId.get()?.id ?? 0;
        poller = setInterval(poll, pollIntervalMs);
        // Polling must not keep a process alive on its own.
        poller.unref();
      }
      const handlers = subscribers.get(channel) ?? new Set<StoreMessageHandler>();
      const subscription: StoreMessageHandler = (message) => handler(message);
      handlers.add(subscription);
      subscribers.set(channel, handlers);
      return () => {
        handlers.delete(subscription);
        if (handlers.size === 0 && subscribers.get(channel) === handlers) subscribers.delete(channel);
        if (subscribers.size === 0) stop();
      };
    },
    stop,
  };
}
