/** Free TCP ports on loopback for tests that start daemons on real sockets. */
import net from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      server.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A tuple of N elements (`Tuple<number, 3>` = `[number, number, number]`), so `const [a, b] = await freePorts(2)` is typed. */
type Tuple<T, N extends number, R extends T[] = []> = number extends N ? T[] : R['length'] extends N ? R : Tuple<T, N, [T, ...R]>;

export async function freePorts<N extends number>(n: N): Promise<Tuple<number, N>> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports] as Tuple<number, N>;
}
