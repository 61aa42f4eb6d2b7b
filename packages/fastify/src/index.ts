/**
 * @keyward/fastify — keyward for Fastify 5: a plugin that decorates the instance with
 * authentication hooks (bearer JWTs and API keys), scope checks, per-route config, and a plugin
 * that mounts the contract's auth routes.
 *
 * @packageDocumentation
 */

export type { Principal } from '@keyward/core/http';
export {
  KeywardFastifyError,
  keywardErrorHandler,
  keywardFrameworkErrors,
  keywardNotFoundHandler,
} from './errors.js';
export {
  type KeywardHook,
  type KeywardNamespacedDecorators,
  type KeywardPluginOptions,
  type KeywardRouteConfig,
  keyward,
  keyward as default,
} from './plugin.js';
export { type KeywardRoutesPluginOptions, keywardRoutes } from './routes.js';
