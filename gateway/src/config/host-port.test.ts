import { parseHostPort, tryParseHostPort } from './host-port';

describe('parseHostPort', () => {
  test.each([
    ['127.0.0.1:5432', '127.0.0.1', 5432],
    ['localhost:6432', 'localhost', 6432],
    ['db.internal.example.com:5433', 'db.internal.example.com', 5433],
    ['pg_primary:5432', 'pg_primary', 5432],
    ['[::1]:6432', '::1', 6432],
    ['[fe80::1%eth0]:6432', 'fe80::1%eth0', 6432],
    [':6432', '0.0.0.0', 6432],
    ['127.0.0.1:0', '127.0.0.1', 0],
    [':0', '0.0.0.0', 0],
    ['0.0.0.0:65535', '0.0.0.0', 65535],
  ])('%s', (s, host, port) => {
    expect(parseHostPort(s)).toEqual({ host, port });
  });

  test.each([
    '',
    '127.0.0.1',
    'localhost:',
    'localhost:65536',
    'localhost:-1',
    'localhost:54x',
    'localhost: 5432',
    'localhost:5432 ',
    '::1:5432',
    '[::1]5432',
    '[::1:5432',
    '[nothost]:5432',
    '999.1.1.1:5432',
    'bad host:5432',
    'a/b:5432',
    '-leading:5432',
    'localhost:123456',
  ])('rejects %j', (s) => {
    expect(tryParseHostPort(s).ok).toBe(false);
    expect(() => parseHostPort(s)).toThrow(`invalid address ${JSON.stringify(s)}`);
  });
});
