export {
  createIssuerVerifier,
  type ExternalVerifiedJwt,
  type IssuerVerifier,
  type IssuerVerifierOptions,
  type TrustedIssuer,
} from './issuers.js';
export { createTokenService, type TokenServiceOptions } from './service.js';
export type {
  ConsumedOneTimeToken,
  IssueTokensInput,
  LogoutInput,
  OneTimeTokenInput,
  RefreshTokenInfo,
  TokenPair,
  TokenService,
} from './types.js';
