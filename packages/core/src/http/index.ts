/**
 * @keyward/core/http — the framework-neutral HTTP layer the framework packages map onto their
 * request and response objects: credential extraction, RFC 6750 errors, the contract routes.
 *
 * @packageDocumentation
 */
export {
  type Authenticator,
  type AuthenticatorDeps,
  type AuthenticatorOptions,
  createAuthenticator,
  type RequestHooks,
  requireRoles,
  requireScopes,
  withRequestHooks,
} from './authenticate.js';
export {
  assertCookieName,
  type CookieModeOptions,
  clearSessionCookie,
  cookieModeFromEnv,
  setSessionCookie,
} from './cookie.js';
export {
  type Credential,
  checkSameOrigin,
  type ExtractCredentialOptions,
  extractCredential,
  type HeaderBag,
  isStateChanging,
} from './credentials.js';
export {
  asKeywardError,
  type BodyFailure,
  type BodyFormat,
  bodyFailureOf,
  type DeniedHook,
  type HttpProblem,
  invalidBody,
  invalidParams,
  invalidRequest,
  isBodyType,
  MAX_PATH_PARAM_LENGTH,
  reportProblem,
  routeNotFound,
  routingFailureOf,
  toHttpProblem,
} from './errors.js';
export {
  type IntrospectionDeps,
  type IntrospectionResponse,
  introspect,
  isFormRequest,
  MAX_OAUTH_TOKEN_LENGTH,
} from './oauth.js';
export {
  type KeywardClaims,
  ownerOf,
  type Principal,
  principalFromApiKey,
  principalFromExternalJwt,
  principalFromJwt,
} from './principal.js';
export {
  contractProblemBody,
  type HttpRequest,
  type HttpResponse,
  handleRoute,
  type KeywardRoute,
  type KeywardRoutesOptions,
  keywardRoutes,
  type ProblemBody,
  problemResponse,
  ROUTE_GROUPS,
  type RouteDeps,
  type RouteGroup,
  type RouteSet,
  routePrefix,
  routeTableOptions,
} from './routes.js';
export { type AuthenticatedUser, staticUsers, type UserDirectory } from './users.js';
