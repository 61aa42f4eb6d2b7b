export { IDP_PREFIX } from './record.js';
export {
  createIdpTokenStore,
  IDP_REWRAP_TARGET,
  type IdpRefreshInput,
  type IdpRefreshResult,
  type IdpTokenInput,
  type IdpTokenStore,
  type IdpTokenStoreOptions,
} from './store.js';
