import type { Principal } from '@keyward/core/http';
import {
  createParamDecorator,
  type ExecutionContext,
  type PipeTransform,
  SetMetadata,
  type Type,
} from '@nestjs/common';
import { OPTIONAL_KEY, PUBLIC_KEY, ROLES_KEY, SCOPES_KEY } from './keyward.constants.js';

/** What the guard puts on the request, on both platforms. */
export interface KeywardRequest {
  /** The principal, where Nest users (and Passport) expect it. */
  user?: Principal;
  /** The same principal, under the name the other keyward packages use. */
  auth?: Principal;
}

/**
 * Lets a route (or a whole controller) through a global `KeywardGuard` without credentials.
 *
 * @example
 * ```ts
 * @Public() @Get('status') status() { return 'ok' }
 * ```
 */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

/**
 * Optional authentication on a route (or a whole controller) behind `KeywardGuard`: it runs
 * without credentials, and sees the principal (`@CurrentUser()`, `request.user`) when a valid one
 * is sent. A bad credential is still refused (401); an `Authorization` header of another scheme
 * (`Basic …`) counts as none. `@Scopes()` / `@Roles()` on it apply only when a principal is there.
 * (`@Public()` skips authentication entirely: no principal even with a valid token.)
 *
 * @example
 * ```ts
 * @OptionalAuth() @Get('feed') feed(@CurrentUser() user?: Principal) { return user ? personal(user) : generic() }
 * ```
 */
export const OptionalAuth = () => SetMetadata(OPTIONAL_KEY, true);

/**
 * Requires every listed scope; on a controller and a handler, both lists apply. Else 403 `insufficient_scope`.
 *
 * @example
 * ```ts
 * @Scopes('orders:write') @Post('orders') create() {}
 * ```
 */
export const Scopes = (...scopes: string[]) => SetMetadata(SCOPES_KEY, scopes);

/**
 * Requires at least one of the roles (the `roles` claim); the handler's list overrides the controller's.
 *
 * @example
 * ```ts
 * @Roles('support', 'admin') @Get('tickets') list() {}
 * ```
 */
export const Roles = (...roles: string[]) => SetMetadata(ROLES_KEY, roles);

/**
 * Injects the authenticated principal (`request.user`), or one of its fields.
 *
 * @example
 * ```ts
 * @Get('me') me(@CurrentUser() user: Principal, @CurrentUser('sub') sub: string) {}
 * ```
 */
// Typed explicitly: the inferred type names a type of recent Nest releases only (ParameterDecoratorOptions).
export const CurrentUser: (
  ...dataOrPipes: (keyof Principal | PipeTransform | Type<PipeTransform> | undefined)[]
) => ParameterDecorator = createParamDecorator(
  (field: keyof Principal | undefined, context: ExecutionContext) => {
    const user = context.switchToHttp().getRequest<KeywardRequest>().user;
    return field === undefined ? user : user?.[field];
  },
);
