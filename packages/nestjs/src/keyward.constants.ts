/**
 * Injection token of the module's `Keyward` instance.
 *
 * @example
 * ```ts
 * constructor(@Inject(KEYWARD) private readonly kw: Keyward) {}
 * ```
 */
export const KEYWARD = Symbol('KEYWARD');
/**
 * Injection token of the resolved `KeywardModuleOptions`.
 *
 * @example
 * ```ts
 * constructor(@Inject(KEYWARD_MODULE_OPTIONS) options: KeywardModuleOptions) {}
 * ```
 */
export const KEYWARD_MODULE_OPTIONS = Symbol('KEYWARD_MODULE_OPTIONS');
/** Metadata keys written by the decorators and read by the guard. */
export const PUBLIC_KEY = 'keyward:public';
export const OPTIONAL_KEY = 'keyward:optional';
export const SCOPES_KEY = 'keyward:scopes';
export const ROLES_KEY = 'keyward:roles';

/** Injection token of the module's route-table options (`routes`), `undefined` when it serves none. */
export const KEYWARD_ROUTES = Symbol('KEYWARD_ROUTES');
