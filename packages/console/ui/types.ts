// The shapes of the admin API's answers, as docs/contract.md gives them.

export type KeyUse = 'sig' | 'enc' | 'data';
export const USES: readonly KeyUse[] = ['sig', 'enc', 'data'];

export interface KeyRow {
  kid: string;
  use: KeyUse;
  alg: string;
  state: 'pending' | 'active' | 'retiring' | 'retired' | 'revoked';
  origin?: string;
  createdAt?: string;
  activatedAt?: string;
  verifyUntil?: string;
  revokedAt?: string;
  destroyedAt?: string;
}

export type PlanAction =
  | { type: 'bootstrap'; use: KeyUse; alg: string }
  | { type: 'generate'; use: KeyUse; alg: string; activateAt: string }
  | { type: 'activate'; kid: string; use: KeyUse; demote: string | null; verifyUntil: string | null }
  | { type: 'retire'; kid: string }
  | { type: 'prune'; kid: string };

export interface Plan {
  from: string;
  horizonDays: number;
  steps: Array<{ at: string; actions: PlanAction[]; jwksKids: string[] }>;
}

export interface AuditEvent {
  id: string;
  type: string;
  time: string;
  outcome: string;
  actor?: { type?: string; sub?: string; instanceId?: string };
  [field: string]: unknown;
}

export type ChainState =
  | { ok: true; count: number; source: 'sink' | 'memory'; sink?: string }
  | { ok: false; index: number; eventId?: string; reason: string; source: 'sink' | 'memory'; sink?: string };

export interface InstanceRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  keyringGeneration: number;
  revocationGeneration: number;
  syncLagMs: number | null;
  syncStale: boolean;
  clockOffsetMs: number | null;
  lastSeenAt: string;
  state: 'current' | 'behind' | 'stale';
}

export interface Instances {
  generation: number | null;
  self: string | null;
  counts: Record<string, number>;
  instances: InstanceRow[];
}

export interface HealthCheck {
  componentId?: string;
  status: 'pass' | 'warn' | 'fail';
  observedValue?: unknown;
  observedUnit?: string;
  output?: string;
  time?: string;
}

export interface Health {
  status: 'pass' | 'warn' | 'fail';
  output?: string;
  checks?: Record<string, HealthCheck[]>;
}

/** The audit event types (core's AUDIT_EVENT_TYPES; a test keeps the two lists equal). */
export const AUDIT_TYPES: readonly string[] = [
  'key.generated',
  'key.activated',
  'key.rotated',
  'key.revoked',
  'key.retired',
  'key.rekeyed',
  'key.destroyed',
  'key.imported',
  'token.issued',
  'token.refreshed',
  'token.reuse_detected',
  'token.revoked',
  'apikey.created',
  'apikey.revoked',
  'secret.rewrapped',
  'access.denied',
  'sync.lag',
  'access.throttled',
];
