export type { DecryptJwtOptions, EncryptJwtOptions } from './jwe.js';
export { decryptJwt, encryptJwt } from './jwe.js';
export type { SignJwtOptions } from './sign.js';
export { signJwt } from './sign.js';
export type {
  JwtClaims,
  JwtHeader,
  JwtVerifierOptions,
  JwtVerifyOverrides,
  RevocationView,
  VerifiedJwt,
} from './types.js';
export type { JwtVerifier } from './verify.js';
export { createJwtVerifier } from './verify.js';
