/**
 * @keyward/express — keyward for Express 4 and 5: middleware that authenticates bearer JWTs and
 * API keys, scope and role checks, and the contract's auth routes as a router.
 *
 * @packageDocumentation
 */

export type { Principal } from '@keyward/core/http';
export { errorHandler, UnauthorizedError } from './errors.js';
export {
  type KeywardExpress,
  type KeywardExpressDeps,
  type KeywardExpressOptions,
  type KeywardRouterOptions,
  keyward,
} from './keyward.js';
