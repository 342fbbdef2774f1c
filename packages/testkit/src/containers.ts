/**
 * Where the tests' PostgreSQL and NATS come from. On these machines (and in CI) they run locally and are
 * used as they are. On a laptop with Docker and neither running, testcontainers starts them (postgres:15
 * with trust auth, nats:2.10 with JetStream) and points the run at them through DATABASE_ADMIN_URL and
 * NATS_URL. With neither, the run fails with a message saying how to get one: never a silent skip.
 */
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { promisify } from "node:util";

const exec = promisify(execFile);

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname || "127.0.0.1", port: Number(port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function dockerAvailable(): Promise<boolean> {
  try {
    await exec("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function ensureTestServices(env: NodeJS.ProcessEnv = process.env): Promise<() => Promise<void>> {
  const pgUrl = env.DATABASE_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/postgres";
  const natsUrl = env.NATS_URL || "nats://127.0.0.1:4222";
  const needPg = !(await reachable(pgUrl, 5432));
  const needNats = !(await reachable(natsUrl.replace(/^nats:/, "http:"), 4222));
  if (!needPg && !needNats) return async () => {};

  const missing = [needPg && `PostgreSQL at ${new URL(pgUrl).host}`, needNats && `NATS at ${new URL(natsUrl.replace(/^nats:/, "http:")).host}`]
    .filter(Boolean)
    .join(" and ");
  if (!(await dockerAvailable())) {
    throw new Error(
      `${missing} not reachable and no Docker engine for testcontainers. Start them locally ` +
        "(pg_ctlcluster 15 main start; nats-server -js), or run scripts/ensure-system.sh as root, or start Docker.",
    );
  }
  const { GenericContainer, Wait } = await import("testcontainers");
  const stops: Array<() => Promise<unknown>> = [];
  if (needPg) {
    const pg = await new GenericContainer("postgres:15")
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust" })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    env.DATABASE_ADMIN_URL = `postgres://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`;
    stops.push(() => pg.stop());
  }
  if (needNats) {
    const nats = await new GenericContainer("nats:2.10")
      .withCommand(["-js"])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start();
    env.NATS_URL = `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`;
    stops.push(() => nats.stop());
  }
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}
