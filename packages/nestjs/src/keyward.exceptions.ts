import { isKeywardError } from '@keyward/core';
import { asKeywardError, type HttpResponse, problemResponse, toHttpProblem } from '@keyward/core/http';
import {
  type ArgumentsHost,
  BadRequestException,
  Catch,
  ForbiddenException,
  HttpException,
  type HttpServer,
  UnauthorizedException,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';

/**
 * The Nest exception for a keyward error: `BadRequestException`, `UnauthorizedException`,
 * `ForbiddenException` or an `HttpException`, whose body is the contract's `{error, message}` and
 * whose `cause` is the `KeywardError`. Anything else is returned unchanged.
 *
 * @example
 * ```ts
 * try { kw.jwt.verify(token) } catch (err) { throw toHttpException(err) }
 * ```
 */
export function toHttpException(err: unknown): unknown {
  if (!isKeywardError(err)) return err;
  const problem = toHttpProblem(err);
  const body = { error: problem.error, message: problem.message };
  if (problem.status === 400) return new BadRequestException(body, { cause: err });
  if (problem.status === 401) return new UnauthorizedException(body, { cause: err });
  if (problem.status === 403) return new ForbiddenException(body, { cause: err });
  return new HttpException(body, problem.status, { cause: err });
}

/**
 * The keyward error behind an exception: a `KeywardError`, one wrapped by {@link toHttpException},
 * or a 4xx of the platform's body parser or router (Nest wraps those in an `HttpException` with
 * the original error as `cause`) as core maps it (`asKeywardError`). `undefined` for any other
 * exception.
 *
 * @example
 * ```ts
 * const err = keywardErrorOf(exception)
 * if (err !== undefined) writeResponse(adapter, response, problemResponse(err))
 * ```
 */
export function keywardErrorOf(exception: unknown): unknown {
  if (isKeywardError(exception)) return exception;
  if (!(exception instanceof HttpException) || exception.getStatus() >= 500) return undefined;
  return asKeywardError(exception.cause);
}

/**
 * Writes core's framework-neutral answer through Nest's HTTP adapter (Express or Fastify alike).
 *
 * @example
 * ```ts
 * writeResponse(this.adapterHost.httpAdapter, res, await keyward.handle('me', req))
 * ```
 */
export function writeResponse(adapter: HttpServer, response: unknown, answer: HttpResponse): void {
  for (const [name, value] of Object.entries(answer.headers)) adapter.setHeader(response, name, value);
  adapter.reply(response, answer.body, answer.status);
}

/**
 * A global exception filter that answers keyward's errors, and the body parser's 4xx on either
 * platform, with the contract's JSON and `WWW-Authenticate` challenge. Other exceptions get Nest's
 * usual answer.
 *
 * @example
 * ```ts
 * providers: [{ provide: APP_FILTER, useClass: KeywardExceptionFilter }]
 * ```
 */
@Catch()
export class KeywardExceptionFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    const err = keywardErrorOf(exception);
    const adapter = this.applicationRef ?? this.httpAdapterHost?.httpAdapter;
    if (err === undefined || host.getType() !== 'http' || !adapter) {
      super.catch(exception, host);
      return;
    }
    writeResponse(adapter, host.switchToHttp().getResponse(), problemResponse(err));
  }
}
