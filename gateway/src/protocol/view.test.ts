import net from 'node:net';
import { bufferView } from './view';

describe('bufferView', () => {
  const source = Buffer.from('..hello world..');
  const v = bufferView(source.buffer, source.byteOffset + 2, 11);

  it('is a Buffer of the bytes it views, sharing their memory', () => {
    expect(Buffer.isBuffer(v)).toBe(true);
    expect(v).toBeInstanceOf(Buffer);
    expect(v.toString()).toBe('hello world');
    expect(v.toString('latin1', 6)).toBe('world');
    expect(v.equals(Buffer.from('hello world'))).toBe(true);
    expect(v).toEqual(Buffer.from('hello world'));
    expect(v.readInt32BE(0)).toBe(Buffer.from('hell').readInt32BE(0));
    expect(v.indexOf(0x77)).toBe(6);
    expect(v.subarray(6).toString()).toBe('world');
    expect(Buffer.concat([v, v]).toString()).toBe('hello worldhello world');
    expect(v.buffer).toBe(source.buffer);
    source[2] = 0x48;
    expect(v.toString()).toBe('Hello world');
    source[2] = 0x68;
  });

  it('goes through a socket as its bytes', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const server = net.createServer((s) => {
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => {
          server.close();
          resolve(text);
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
          c.write(v);
          c.end(bufferView(source.buffer, source.byteOffset, 2));
        });
        c.on('error', reject);
      });
    });
    expect(got).toBe('hello world..');
  });
});
