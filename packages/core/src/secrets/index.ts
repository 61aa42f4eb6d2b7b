export { SECRET_PREFIX } from './record.js';
export { createSecretService, SECRETS_REWRAP_TARGET } from './service.js';
export type { SecretInfo, SecretService } from './types.js';
