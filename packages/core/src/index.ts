/**
 * @keyward/core — key management for Node web apps.
 *
 * @packageDocumentation
 */
export * from './apikeys/index.js';
export * from './audit/index.js';
export * from './data/index.js';
export { isKeywardError, KeywardError, type KeywardErrorCode, type KeywardErrorOptions } from './errors.js';
export * from './fernet/index.js';
export * from './health/index.js';
export * from './idp/index.js';
export * from './jwt/index.js';
export * from './keys/index.js';
export {
  createKeyward,
  createKeywardCore,
  type Keyward,
  type KeywardCore,
  type KeywardInstances,
  type KeywardJwt,
  type KeywardKeys,
  type KeywardRevocations,
  type KeywardScheduler,
  type KeywardServiceOptions,
  type KeywardSync,
  type SignOptions,
} from './keyward.js';
export * from './metrics/index.js';
export {
  type KeywardEnvironment,
  type KeywardLogger,
  type KeywardOptions,
  keywardOptionsFromEnv,
} from './options.js';
export * from './ratelimit/index.js';
export * from './secrets/index.js';
export * from './store/index.js';
export {
  DEFAULT_HEARTBEAT_MS,
  INSTANCES_COLLECTION,
  type InstanceRecord,
  type InstanceState,
  type InstancesReport,
  type InstanceView,
  KEYWARD_VERSION,
  listInstances,
} from './sync/instances.js';
export {
  type RevocationEvent,
  RevocationSet,
  type RevocationSetOptions,
  SUBJECT_ACK_CLAIM,
} from './sync/revocations.js';
export { type KeyringProblem, KeyringSync, type SyncChange, type SyncStatus } from './sync/sync.js';
export * from './tokens/index.js';
