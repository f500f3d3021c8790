/**
 * The Jupyter wire format, shared by the kernel and the headless notebook runner:
 *   [identities…, '<IDS|MSG>', hmac, header, parent_header, metadata, content, buffers…]
 * The signature is an HMAC of the four JSON frames; an empty key means unsigned messages.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { userInfo } from 'node:os';
import type { KernelMessage } from '@jupyterlab/services';

export const DELIMITER = '<IDS|MSG>';
export const PROTOCOL_VERSION = '5.3';

export type Frame = Buffer | Uint8Array | string;

export class SignatureError extends Error {
  override name = 'SignatureError';
}

export class Signer {
  private readonly algorithm: string;

  constructor(
    private readonly key: string,
    scheme = 'hmac-sha256',
  ) {
    if (!scheme.startsWith('hmac-')) throw new Error(`unsupported signature scheme ${scheme}`);
    this.algorithm = scheme.slice('hmac-'.length);
  }

  sign(parts: readonly Frame[]): string {
    if (!this.key) return '';
    const hmac = createHmac(this.algorithm, this.key);
    for (const part of parts) hmac.update(part);
    return hmac.digest('hex');
  }

  verify(signature: string, parts: readonly Frame[]): boolean {
    if (!this.key) return true;
    const expected = Buffer.from(this.sign(parts));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

export interface Envelope<M extends KernelMessage.IMessage = KernelMessage.IMessage> {
  /** ROUTER identities (or the PUB topic) in front of the delimiter. */
  identities: Buffer[];
  message: M;
}

export function encode(signer: Signer, message: KernelMessage.IMessage, identities: readonly Frame[] = []): Frame[] {
  const parts = [message.header, message.parent_header, message.metadata, message.content].map((part) => JSON.stringify(part ?? {}));
  const buffers = (message.buffers ?? []).map((buffer) => (ArrayBuffer.isView(buffer) ? Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength) : Buffer.from(buffer)));
  return [...identities, DELIMITER, signer.sign(parts), ...parts, ...buffers];
}

/** Parses and authenticates one multipart message; throws SignatureError on a bad signature. */
export function decode(signer: Signer, frames: readonly Buffer[], channel: KernelMessage.Channel): Envelope {
  const delimiter = frames.findIndex((frame) => frame.length === DELIMITER.length && frame.toString() === DELIMITER);
  if (delimiter < 0 || frames.length < delimiter + 6) throw new Error('malformed message: no delimiter or too few frames');
  const [signature, ...rest] = frames.slice(delimiter + 1);
  const parts = rest.slice(0, 4);
  if (!signer.verify(signature.toString(), parts)) throw new SignatureError('invalid message signature');
  const [header, parent_header, metadata, content] = parts.map((part) => JSON.parse(part.toString('utf8')));
  const message = { header, parent_header, metadata, content, channel, buffers: rest.slice(4) };
  return { identities: frames.slice(0, delimiter), message: message as KernelMessage.IMessage };
}

const username = (() => {
  try {
    return userInfo().username;
  } catch {
    return 'tsgather';
  }
})();

export function newHeader<T extends KernelMessage.MessageType>(msgType: T, session: string): KernelMessage.IHeader<T> {
  return {
    msg_id: randomUUID(),
    msg_type: msgType,
    session,
    username,
    date: new Date().toISOString(),
    version: PROTOCOL_VERSION,
  };
}

export interface MessageOptions<M extends KernelMessage.IMessage> {
  msgType: M['header']['msg_type'];
  channel: M['channel'];
  content: M['content'];
  session: string;
  parent?: KernelMessage.IHeader;
  metadata?: KernelMessage.IMessage['metadata'];
}

export function newMessage<M extends KernelMessage.IMessage>(options: MessageOptions<M>): M {
  return {
    header: newHeader(options.msgType, options.session),
    parent_header: options.parent ?? {},
    metadata: options.metadata ?? {},
    content: options.content,
    channel: options.channel,
    buffers: [],
  } as unknown as M;
}
