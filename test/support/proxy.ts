// A TCP proxy on a loopback port that a test switches off and on, to make a service unreachable
// for the processes pointed at it (and only them) without stopping the service.
import net from "node:net";

export interface TcpProxy {
  port: number;
  /** Drops every connection and refuses new ones until enable(). */
  disable(): void;
  enable(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let enabled = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!enabled) return void client.destroy();
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const disable = () => {
    enabled = false;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    disable,
    enable() {
      enabled = true;
    },
    async close() {
      disable();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
