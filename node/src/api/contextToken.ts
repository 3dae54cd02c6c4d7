/**
 * The opaque context token clients carry in X-Dynamo-Context.
 *
 * token = base64url(payload || mac), where payload is core's encodeContext bytes (versioned) and
 * mac is HMAC-SHA256(contextSecret, payload) truncated to 16 bytes. The MAC matters because a
 * forged context could claim to have seen writes it never saw, and a put with it would silently
 * discard those siblings; with the MAC only vectors this cluster issued are accepted. Every node
 * of a cluster shares the secret, so any node can check a token another node issued.
 *
 * Every GET signs a token and every PUT checks one and signs another, and one HMAC costs about
 * 2 us of the request's CPU (createHmac with a prepared key, Node 24), so the codec remembers the
 * tokens it recently issued (by payload) and verified (by token text). A token is a pure function
 * of its payload and the secret, and contexts repeat a lot (a node's keys share a few small
 * vectors), so most requests skip the MAC. Only tokens that verified are remembered, so a forged
 * token can never be served from the cache; the caches are bounded in entries and in token length.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ContextDecodeError, decodeContext, encodeContext } from '../core/context';
import type { VersionVector } from '../core/version';
import { DynamoError } from './errors';
import { RecentCache } from './recentCache';

export const CONTEXT_MAC_BYTES = 16;
/** Far above any real vector (a few bytes per member), and below Node's 16 KiB header limit. */
export const CONTEXT_TOKEN_CHARS_MAX = 8192;
/** Shorter secrets are refused by the configuration, so the MAC cannot be brute-forced. */
export const CONTEXT_SECRET_BYTES_MIN = 16;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const EMPTY_VECTOR: VersionVector = Object.freeze({});
/** Tokens remembered per cache; a few hundred bytes each, so well under a MiB in all. */
export const TOKEN_CACHE_ENTRIES_MAX = 4096;
/** Longer tokens (vectors of very many members) are not remembered, which bounds the memory. */
export const TOKEN_CACHE_CHARS_MAX = 256;

export class ContextCodec {
  /**
   * The secret, prepared once as a KeyObject. Every GET and PUT signs or checks a token, and
   * handing createHmac the raw bytes prepares the key anew on each call: on Node 24 that made one
   * MAC cost 12-16 us instead of about 3.5 us, and showed as 8-10% of a node's CPU in profiles.
   */
  private readonly key: KeyObject;
  /** Payload bytes (as latin1 text) -> the token issued for them. */
  private readonly issued = new RecentCache<string, string>(TOKEN_CACHE_ENTRIES_MAX);
  /** Token text -> the frozen vector it verified as. */
  private readonly verified = new RecentCache<string, VersionVector>(TOKEN_CACHE_ENTRIES_MAX);

  constructor(secret: string | Uint8Array) {
    const bytes = Buffer.from(secret);
    if (bytes.length < CONTEXT_SECRET_BYTES_MIN) {
      throw new RangeError(`context secret must be at least ${CONTEXT_SECRET_BYTES_MIN} bytes`);
    }
    this.key = createSecretKey(bytes);
  }

  encode(vector: VersionVector): string {
    const payload = encodeContext(vector);
    const cacheKey = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
    const known = this.issued.get(cacheKey);
    if (known !== undefined) return known;
    const token = Buffer.concat([payload, this.mac(payload)]).toString('base64url');
    if (token.length <= TOKEN_CACHE_CHARS_MAX) {
      this.issued.set(cacheKey, token);
      // A token issued now usually comes back with the client's next write.
      this.verified.set(token, Object.freeze({ ...vector }));
    }
    return token;
  }

  /**
   * An absent or empty header is the empty context (a blind write); anything else must verify.
   * The vector returned is frozen: it may be shared with other requests that sent the same token.
   */
  decode(token: string | undefined): VersionVector {
    if (token === undefined || token === '') return EMPTY_VECTOR;
    const known = this.verified.get(token);
    if (known !== undefined) return known;
    const vector = Object.freeze(this.verify(token));
    if (token.length <= TOKEN_CACHE_CHARS_MAX) this.verified.set(token, vector);
    return vector;
  }

  private verify(token: string): VersionVector {
    if (token.length > CONTEXT_TOKEN_CHARS_MAX) throw invalid('token too long');
    // Buffer.from(..., 'base64url') skips characters it does not know, so check the alphabet first.
    if (!BASE64URL.test(token)) throw invalid('not base64url');
    const bytes = Buffer.from(token, 'base64url');
    if (bytes.length <= CONTEXT_MAC_BYTES) throw invalid('token too short');
    const payload = bytes.subarray(0, bytes.length - CONTEXT_MAC_BYTES);
    const mac = bytes.subarray(bytes.length - CONTEXT_MAC_BYTES);
    if (!timingSafeEqual(mac, this.mac(payload))) throw invalid('not issued by this cluster');
    try {
      return decodeContext(payload);
    } catch (error) {
      // A valid MAC over a bad payload means a bug or a changed format, not an attack.
      if (error instanceof ContextDecodeError) throw invalid(error.message);
      throw error;
    }
  }

  private mac(payload: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(payload).digest().subarray(0, CONTEXT_MAC_BYTES);
  }
}

function invalid(reason: string): DynamoError {
  return new DynamoError('CONTEXT_INVALID', `The X-Dynamo-Context header is invalid: ${reason}.`);
}
