// A quota-alert server a test owns: its own port, database and admin key, so
// the test may kill and restart it (the shared server of scripts/test.sh must
// stay up for the other tests).
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const BINARY = process.env.QUOTA_SERVER_BIN ?? path.join(ROOT, 'target', 'release', 'quota-alert');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class TestServer {
  readonly adminKey = `e2e-own-admin-${Math.random().toString(36).slice(2)}-key`;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quota-alert-e2e-own-'));
  private proc: ChildProcess | null = null;
  private log: string[] = [];

  private constructor(readonly port: number, private readonly extraEnv: Record<string, string>) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(extraEnv: Record<string, string> = {}): Promise<TestServer> {
    const server = new TestServer(await freePort(), extraEnv);
    await server.start();
    return server;
  }

  /** Starts (again) on the same port with the same database. */
  async start(): Promise<void> {
    if (!fs.existsSync(BINARY)) {
      throw new Error(`${BINARY} is missing: build with \`cargo leptos build --release\` first`);
    }
    const env = {
      ...process.env,
      LEPTOS_OUTPUT_NAME: 'quota-alert',
      LEPTOS_SITE_ROOT: path.join(ROOT, 'target', 'site'),
      LEPTOS_SITE_PKG_DIR: 'pkg',
      LEPTOS_SITE_ADDR: `127.0.0.1:${this.port}`,
      LEPTOS_ENV: 'PROD',
      QUOTA_ADMIN_RESET_KEY: this.adminKey,
      QUOTA_DATABASE_URL: `sqlite://${path.join(this.dataDir, 'e2e.db')}`,
      RUST_LOG: 'warn',
      ...this.extraEnv,
    };
    const proc = spawn(BINARY, [], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (chunk: Buffer) => {
      this.log.push(chunk.toString());
      if (this.log.length > 200) this.log.shift();
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) break;
      if (await healthy(this.url)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not start on ${this.url}:\n${this.log.join('')}`);
  }

  /** Kills the server at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  output(): string {
    return this.log.join('');
  }
}

function healthy(base: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${base}/healthz`, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1_000, () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** Messages Chromium itself logs while a server is down or refuses a stale
 * session: failed connections, not errors of the app. */
export function isNetworkNoise(message: string): boolean {
  return (
    /WebSocket connection to '.*\/api\/quota\/ws.*' failed/.test(message) ||
    /Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|NETWORK_CHANGED)/.test(message)
  );
}
