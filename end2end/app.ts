// A private Stockflow for the stories that need one of their own, and for
// the global setup when no BASE_URL is given: a redis-server on a free
// loopback port in a temporary directory, the server and one workers process
// of the last build. Never the machine's Redis.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(__dirname, "..");

/// The build the stories run: E2E_PROFILE (`release` or `debug`), else the
/// one whose server was built last (what `cargo leptos end-to-end` just
/// built, with or without `--release`).
export function profile(): "release" | "debug" {
  const wanted = process.env.E2E_PROFILE;
  if (wanted === "release" || wanted === "debug") return wanted;
  const built = (p: string) => {
    const server = join(ROOT, "target", p, "server");
    return existsSync(server) ? statSync(server).mtimeMs : 0;
  };
  return built("debug") > built("release") ? "debug" : "release";
}

export const binary = (name: string) => join(ROOT, "target", profile(), name);

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

async function until(what: string, deadlineMs: number, ready: () => Promise<boolean> | boolean) {
  const deadline = Date.now() + deadlineMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${deadlineMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once("exit", () => done());
  });
}

/// Ends a process this module started: SIGTERM, then SIGKILL after 10 s.
async function stop(child: ChildProcess | undefined) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited(child);
  clearTimeout(killer);
}

export interface AppOptions {
  /// PAYMENT_DELAY_MS (default 1000: a delay a person, and a story, can see pass).
  paymentDelayMs?: number;
  /// More settings of the server (the stories of the limits).
  env?: Record<string, string>;
}

/// A running private app. Its Redis can be stopped and started again (same
/// port, same directory, same data), as in an outage.
export class PrivateApp {
  readonly dir = mkdtempSync(join(tmpdir(), "stockflow-e2e-"));
  readonly adminToken = `e2e-${randomBytes(16).toString("hex")}`;
  baseURL = "";
  redisURL = "";
  private redisPort = 0;
  private redis?: ChildProcess;
  private server?: ChildProcess;
  private workers?: ChildProcess;
  private env: NodeJS.ProcessEnv = {};
  /// Servers started beside the first (`addServer`).
  private others: ChildProcess[] = [];

  static async start(options: AppOptions = {}): Promise<PrivateApp> {
    const app = new PrivateApp();
    try {
      await app.boot(options);
    } catch (error) {
      await app.stop();
      throw error;
    }
    return app;
  }

  private async boot(options: AppOptions) {
    for (const name of ["server", "workers"]) {
      if (!existsSync(binary(name))) throw new Error(`${binary(name)} is missing: build the app first`);
    }
    this.redisPort = await freePort();
    this.redisURL = `redis://127.0.0.1:${this.redisPort}`;
    await this.startRedis();
    const addr = `127.0.0.1:${await freePort()}`;
    this.baseURL = `http://${addr}`;
    const env = {
      ...process.env,
      REDIS_URL: this.redisURL,
      ADMIN_TOKEN: this.adminToken,
      PAYMENT_DELAY_MS: String(options.paymentDelayMs ?? 1000),
      LEPTOS_SITE_ADDR: addr,
      LEPTOS_OUTPUT_NAME: "stockflow",
      LEPTOS_SITE_ROOT: join(ROOT, "target", "site"),
      LEPTOS_SITE_PKG_DIR: "pkg",
      LEPTOS_ENV: "PROD",
      CONSUMER_NAME: `e2e-${this.redisPort}`,
      // The stories' browsers all come from 127.0.0.1 (scripts/test does the same).
      ORDER_RATE_PER_CLIENT: "0",
      SEARCH_RATE_PER_CLIENT: "0",
      FEED_MAX_PER_CLIENT: "1000",
      ...options.env,
    };
    delete env.REDIS_CLUSTER_NODES;
    this.env = env;
    this.workers = spawn(binary("workers"), [], { env, stdio: ["ignore", this.log("workers"), this.log("workers")] });
    await this.startServer();
  }

  private log(name: string) {
    return openSync(join(this.dir, `${name}.log`), "a");
  }

  /// Starts its server (on the same address each time) and waits until it is ready.
  private async startServer() {
    this.server = await this.spawnServer(this.baseURL, "server");
  }

  /// Starts one more server on the same Redis, on an address of its own (as
  /// a deployment runs several behind a balancer); returns its base URL.
  async addServer(): Promise<string> {
    const baseURL = `http://127.0.0.1:${await freePort()}`;
    this.others.push(await this.spawnServer(baseURL, `server-${this.others.length + 2}`));
    return baseURL;
  }

  /// Spawns a server answering at `baseURL`, logging to `<name>.log`, and
  /// waits until it is ready.
  private async spawnServer(baseURL: string, name: string): Promise<ChildProcess> {
    const env = { ...this.env, LEPTOS_SITE_ADDR: new URL(baseURL).host };
    const server = spawn(binary("server"), [], { env, stdio: ["ignore", this.log(name), this.log(name)] });
    await until(name, 60_000, async () => {
      if (server.exitCode != null) throw new Error(`${name} exited; see ${this.dir}/${name}.log`);
      try {
        return (await fetch(`${baseURL}/readyz`)).ok;
      } catch {
        return false;
      }
    });
    return server;
  }

  /// Stops its server (SIGTERM: it shuts down gracefully, closing every
  /// live feed), waits `downMs`, and starts it again on the same address,
  /// as a deployment would. The workers and Redis go on meanwhile.
  async restartServer(downMs = 0) {
    await stop(this.server);
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.startServer();
  }

  /// Starts (or starts again) its redis-server, append-only, in its directory.
  async startRedis() {
    const args = ["--port", String(this.redisPort), "--bind", "127.0.0.1", "--dir", this.dir,
      "--appendonly", "yes", "--save", "", "--logfile", join(this.dir, "redis.log")];
    this.redis = spawn("redis-server", args, { stdio: "ignore" });
    await until("redis-server", 10_000, () => {
      try {
        return execFileSync("redis-cli", ["-p", String(this.redisPort), "ping"], { stdio: ["ignore", "pipe", "ignore"] })
          .toString()
          .includes("PONG");
      } catch {
        return false;
      }
    });
  }

  /// Stops its redis-server, as an outage would (its data stays on disk).
  async stopRedis() {
    await stop(this.redis);
  }

  async stop() {
    await Promise.all([stop(this.workers), stop(this.server), ...this.others.map(stop)]);
    await stop(this.redis);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
