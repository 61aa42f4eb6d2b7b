export {
  AUDIT_GENESIS_HASH,
  type AuditChainResult,
  canonicalJson,
  hashAuditEvent,
  type VerifyAuditChainOptions,
  verifyAuditChain,
  verifyAuditFile,
} from './chain.js';
export { DEFAULT_DENIED_RATE_LIMIT, type DeniedRateLimit } from './denied-limiter.js';
export {
  AUDIT_EVENT_TYPES,
  type AuditActor,
  type AuditEvent,
  type AuditEventBase,
  type AuditEventFields,
  type AuditEventInput,
  type AuditEventType,
  type AuditOutcome,
  fingerprint,
  type RotationType,
} from './events.js';
export { jsonlFileSink } from './jsonl-file-sink.js';
export {
  type AuditChainState,
  type AuditLog,
  type AuditLogOptions,
  type AuditStats,
  createAuditLog,
} from './log.js';
export { MAX_AUDIT_STRING_LENGTH, scrubAuditFields, secretLikeReason } from './scrub.js';
export { AUDIT_REDACT_PATHS, type AuditSink, callbackSink, createAuditLogger, pinoSink } from './sinks.js';
