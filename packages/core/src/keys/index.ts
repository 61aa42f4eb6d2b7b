export { isSymmetric, normalizeSigningAlgorithm, SIGNING_ALGORITHMS } from './algorithms.js';
export {
  type GeneratedKey,
  type GenerateKeyOptions,
  generateKey,
  type KeyMaterial,
  publicJwk,
} from './generate.js';
export { type ImportJwks, type ImportKeyOptions, type PreparedImport, prepareImport } from './import.js';
export {
  type ImportKeyContext,
  type ImportKeyResult,
  KeyService,
  type KeyServiceHooks,
  type RevokeResult,
  type RotateOptions,
  type RotateResult,
} from './key-service.js';
export { type DataKey, type JsonWebKeySet, Keyring, type UnsealedKey } from './keyring.js';
export {
  destroyedRecords,
  EVENTS_CHANNEL,
  KEYRING_GENERATION_KEY,
  KEYRING_KEY,
  type KeyringDocument,
  KeyringRepository,
  type RekeyResult,
  type StoredKey,
  sameLineage,
} from './keyring-store.js';
export { legacyDataKey, legacyEncryptionKey, legacyKid, legacySigningKey } from './legacy.js';
export {
  assertTransition,
  checkKeyringInvariants,
  isPublishedStandby,
  prunable,
  retiringExpired,
  revokeKey,
  rotateNow,
  signingStandby,
  standbyActivateAt,
  transition,
  withStandby,
} from './lifecycle.js';
export {
  type LoadMasterKeyOptions,
  loadMasterKey,
  MASTER_KEY_FILE,
  MasterKey,
  type MasterKeySource,
  parsePreviousMasterKeys,
} from './master-key.js';
export {
  applyRotationActions,
  planRotation,
  publishedKids,
  type RotationAction,
  type RotationStep,
  retirableDataKeys,
  retireDataKey,
  simulateRotation,
} from './rotation-plan.js';
export {
  computeVerifyUntil,
  type Duration,
  parseDuration,
  type RotationPolicy,
  type RotationPolicyInput,
  resolveRotationPolicy,
  validateRotationPolicy,
} from './rotation-policy.js';
export {
  createRotationScheduler,
  type RotationScheduler,
  type RotationSchedulerDeps,
  type RotationSchedulerOptions,
  type RotationTickResult,
} from './scheduler.js';
export { sealKeyMaterial, unsealKeyMaterial } from './seal.js';
export type {
  EncryptionKey,
  KeyAlgorithm,
  KeyLookup,
  KeyOrigin,
  KeyRecord,
  KeyState,
  KeyUse,
  SigningAlgorithm,
  SigningKey,
  TypPolicy,
  VerificationKey,
} from './types.js';
