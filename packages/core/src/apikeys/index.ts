export { API_KEY_PATTERN, type ApiKeyParts, apiKeyChecksum, generateApiKey, parseApiKey } from './format.js';
export { APIKEYS_CHANNEL, revokeApiKeysPinnedTo } from './record.js';
export { type ApiKeyServiceInstance, type ApiKeyServiceOptions, createApiKeyService } from './service.js';
export type {
  ApiKeyInfo,
  ApiKeyService,
  CreateApiKeyInput,
  CreatedApiKey,
  VerifiedApiKey,
} from './types.js';
