/**
 * @keyward/nestjs — keyward for NestJS on the Express and the Fastify platform.
 *
 * @packageDocumentation
 */
export type { KeywardClaims, Principal } from '@keyward/core/http';
export { KEYWARD, KEYWARD_MODULE_OPTIONS } from './keyward.constants.js';
export {
  CurrentUser,
  type KeywardRequest,
  OptionalAuth,
  Public,
  Roles,
  Scopes,
} from './keyward.decorators.js';
export {
  KeywardExceptionFilter,
  keywardErrorOf,
  toHttpException,
  writeResponse,
} from './keyward.exceptions.js';
export { KeywardGuard, type RouteAuth } from './keyward.guard.js';
export { KeywardHealthIndicator, type KeywardHealthResult } from './keyward.health.js';
export { KeywardModule, type KeywardModuleExtras } from './keyward.module.js';
export {
  type KeywardErrorFormat,
  type KeywardNestRoutesOptions,
  NEST_DEFAULT_ROUTE_GROUPS,
  nestProblemBody,
} from './keyward.options.js';
export { type KeywardHttpRequest, type KeywardModuleOptions, KeywardService } from './keyward.service.js';
