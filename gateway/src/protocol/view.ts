/**
 * Views of received bytes made without Node's `Buffer#subarray`, which reads its source's
 * ArrayBuffer through a C++ getter on every call (about 40 of a view's 60 ns here): the framer
 * reads each chunk's ArrayBuffer once and makes its frames' views from it (framing.ts).
 *
 * A ByteView is a Buffer to every caller: `Buffer.isBuffer`, `instanceof Buffer`, every Buffer
 * method, `constructor`; sockets write it as is. Under Bun, whose Buffer methods
 * may check the receiver natively, views are plain `Buffer.from(ab, offset, length)`.
 */
class ByteView extends Uint8Array {}
Object.setPrototypeOf(ByteView.prototype, Buffer.prototype);
// As Node does for its own FastBuffer: a view inspects and serializes as a Buffer.
Object.defineProperty(ByteView.prototype, 'constructor', {
  value: Buffer,
  writable: true,
  configurable: true,
});

const BUN = typeof (process.versions as Record<string, string | undefined>).bun === 'string';

/** A Buffer of `length` bytes of `ab` from `byteOffset`, sharing its memory. */
export const bufferView: (ab: ArrayBufferLike, byteOffset: number, length: number) => Buffer = BUN
  ? (ab, byteOffset, length) => Buffer.from(ab as ArrayBuffer, byteOffset, length)
  : (ab, byteOffset, length) => new ByteView(ab as ArrayBuffer, byteOffset, length) as unknown as Buffer;
