/**
 * @keyward/hono — keyward for Hono: typed middleware that authenticates bearer JWTs and API keys,
 * scope and role checks, and the contract's auth routes as a sub-app.
 *
 * @packageDocumentation
 */

export type { Principal } from '@keyward/core/http';
export { toHTTPException } from './errors.js';
export {
  type KeywardApiKeyDeps,
  type KeywardAuthOptions,
  type KeywardEnv,
  type KeywardHonoAuthHooks,
  type KeywardOptionalEnv,
  keywardApiKey,
  keywardAuth,
  keywardOptional,
  requireRoles,
  requireScopes,
} from './middleware.js';
export { type KeywardHonoDeps, type KeywardHonoRoutesOptions, keywardRoutes } from './routes.js';
