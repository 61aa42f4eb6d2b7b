export { createDataCipher, type DataCipher } from './cipher.js';
export type { DataKeyRewrap, DataKeyRewrapOptions, DataKeyRewrapStatus } from './compromise.js';
export { isLegacySecretValue, migrateLegacySecret, readLegacySecret } from './legacy.js';
export {
  countCiphertextsUnder,
  createRewrapJob,
  jsonField,
  type RewrapJob,
  type RewrapJobOptions,
  type RewrapProgress,
  type RewrapResult,
  type RewrapTarget,
  versionedJsonField,
} from './rewrap.js';
