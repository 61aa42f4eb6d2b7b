import type { AuditEvent } from '../../audit/events.js';
import { createAuditLog } from '../../audit/log.js';
import { callbackSink } from '../../audit/sinks.js';
import { createKeywardCore, type KeywardCore } from '../../core.js';
import { MasterKey } from '../../keys/master-key.js';
import { createMemoryStore } from '../../store/memory.js';
import type { Store } from '../../store/types.js';

/** A test core with a settable clock and captured audit events. */
export interface TestCore {
  core: KeywardCore;
  events: AuditEvent[];
  clock: { now: number };
  masterKey: string;
}

export async function makeCore(
  options: { store?: Store; masterKey?: string; jwtSecret?: string; now?: number } = {},
): Promise<TestCore> {
  const clock = { now: options.now ?? Date.UTC(2025, 0, 1) };
  const events: AuditEvent[] = [];
  const masterKey = options.masterKey ?? MasterKey.generate().exportText();
  const now = () => clock.now;
  const core = await createKeywardCore({
    store: options.store ?? createMemoryStore(),
    masterKey,
    logger: false,
    audit: createAuditLog({ sinks: [callbackSink((e) => void events.push(e))], now }),
    now,
    syncIntervalMs: 60_000,
    scheduler: false,
    ...(options.jwtSecret ? { jwtSecret: options.jwtSecret } : {}),
  });
  return { core, events, clock, masterKey };
}
