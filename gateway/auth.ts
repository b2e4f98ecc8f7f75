/**
 * JWT bearer tokens, HS256 and RS256, with node:crypto only. `sub` is the user id; a token with
 * `role: "admin"` may call the admin routes. `exp` is required and `nbf` honoured, both with
 * `gateway.jwtLeewayS` of clock skew. The `alg` header must be one the configuration has a key
 * for; `none` and algorithm confusion (an HS256 token "signed" with the RSA public key) are
 * refused because each algorithm only ever sees its own key.
 *
 * A verified token is cached (bounded) so a client that sends the same token on every request
 * pays for one HMAC or RSA verification, not one per request; `exp`/`nbf` are rechecked on every
 * use.
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.js';
import type { GatewaySettings } from '../config/index.js';
import { USER_ID_BYTES_MAX, isValidToken } from '../engine/index.js';

export interface Principal {
  readonly userId: string;
  readonly admin: boolean;
  /** Epoch seconds. */
  readonly exp: number;
  readonly nbf: number;
}

/** Bound on cached verified tokens; past it the cache starts over. */
const CACHE_MAX = 10_000;

export class JwtVerifier {
  private readonly cache = new Map<string, Principal>();

  constructor(
    private readonly hsSecret: Buffer | null,
    private readonly rsaKey: KeyObject | null,
    private readonly leewayS: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** The principal of an `Authorization` header value, or null when it is not acceptable. */
  verifyHeader(header: string): Principal | null {
    if (header.length < 8 || !header.startsWith('Bearer ')) return null;
    return this.verify(header.slice(7).trim());
  }

  verify(token: string): Principal | null {
    const nowS = this.nowMs() / 1000;
    const cached = this.cache.get(token);
    if (cached) return this.inWindow(cached, nowS) ? cached : null;
    const p = this.verifyFresh(token);
    if (!p || !this.inWindow(p, nowS)) return null;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(token, p);
    return p;
  }

  /**
   * Whether a principal verified earlier (a WebSocket's, at its upgrade) is still in its window.
   */
  stillValid(p: Principal): boolean {
    return this.inWindow(p, this.nowMs() / 1000);
  }

  private inWindow(p: Principal, nowS: number): boolean {
    return nowS < p.exp + this.leewayS && nowS >= p.nbf - this.leewayS;
  }

  private verifyFresh(token: string): Principal | null {
    if (token.length > 8192) return null;
    const dot1 = token.indexOf('.');
    const dot2 = token.indexOf('.', dot1 + 1);
    if (dot1 <= 0 || dot2 <= dot1 + 1 || token.indexOf('.', dot2 + 1) !== -1) return null;
    const header = decodeJson(token.slice(0, dot1));
    if (!header) return null;
    const signed = token.slice(0, dot2);
    const sig = Buffer.from(token.slice(dot2 + 1), 'base64url');
    if (header.alg === 'HS256' && this.hsSecret) {
      const want = createHmac('sha256', this.hsSecret).update(signed).digest();
      if (sig.length !== want.length || !timingSafeEqual(sig, want)) return null;
    } else if (header.alg === 'RS256' && this.rsaKey) {
      if (!verify('RSA-SHA256', Buffer.from(signed), this.rsaKey, sig)) return null;
    } else {
      return null;
    }
    return principalOf(decodeJson(token.slice(dot1 + 1, dot2)));
  }
}

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function principalOf(claims: Record<string, unknown> | null): Principal | null {
  if (!claims || !isValidToken(claims.sub, USER_ID_BYTES_MAX)) return null;
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return null;
  const nbf = claims.nbf === undefined ? 0 : claims.nbf;
  if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return null;
  return Object.freeze({
    userId: claims.sub,
    admin: claims.role === 'admin',
    exp: claims.exp,
    nbf,
  });
}

/**
 * The verifier for a configuration, or null for `auth: none`. Checks the cross-field rules:
 * jwt mode needs a secret (≥ 32 bytes) or a readable RSA public key.
 */
export function createVerifier(g: GatewaySettings): JwtVerifier | null {
  if (g.auth === 'none') return null;
  let secret: Buffer | null = null;
  if (g.jwtSecret !== '') {
    secret = Buffer.from(g.jwtSecret, 'utf8');
    if (secret.length < 32) {
      throw new ConfigError('config.gateway.jwtSecret must be at least 32 bytes for HS256');
    }
  }
  let key: KeyObject | null = null;
  if (g.jwtPublicKey !== '') key = loadPublicKey(g.jwtPublicKey);
  if (!secret && !key) {
    throw new ConfigError(
      "config.gateway.auth is 'jwt' but neither config.gateway.jwtSecret " +
        '(STOCKADE_JWT_SECRET) nor ' +
        'config.gateway.jwtPublicKey (STOCKADE_JWT_PUBLIC_KEY) is set; set one, or use auth ' +
        "'none' for development",
    );
  }
  return new JwtVerifier(secret, key, g.jwtLeewayS);
}

function loadPublicKey(value: string): KeyObject {
  const pem = value.includes('-----BEGIN') ? value : readKeyFile(value);
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`a ${key.asymmetricKeyType} key`);
    return key;
  } catch (err) {
    throw new ConfigError(
      'config.gateway.jwtPublicKey must be an RSA public key in PEM form: ' +
        (err as Error).message,
      {
        cause: err,
      },
    );
  }
}

function readKeyFile(path: string): string {
  if (!existsSync(path)) {
    throw new ConfigError(
      `config.gateway.jwtPublicKey is neither PEM text nor a readable file: ${path}`,
    );
  }
  return readFileSync(path, 'utf8');
}

/**
 * Signs a token (for tests, the benchmark and operators' scripts): HS256 with a secret string,
 * RS256 with a PEM private key.
 */
export function signJwt(
  claims: Record<string, unknown>,
  key: { secret: string } | { privateKeyPem: string },
): string {
  const alg = 'secret' in key ? 'HS256' : 'RS256';
  const head = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signed = `${head}.${body}`;
  const sig =
    'secret' in key
      ? createHmac('sha256', key.secret).update(signed).digest()
      : sign('RSA-SHA256', Buffer.from(signed), createPrivateKey(key.privateKeyPem));
  return `${signed}.${sig.toString('base64url')}`;
}
