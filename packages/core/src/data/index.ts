export { createDataCipher, type DataCipher } from './cipher.js';
export { isLegacySecretValue, migrateLegacySecret, readLegacySecret } from './legacy.js';
export {
  createRewrapJob,
  jsonField,
  type RewrapJob,
  type RewrapJobOptions,
  type RewrapProgress,
  type RewrapResult,
} from './rewrap.js';
