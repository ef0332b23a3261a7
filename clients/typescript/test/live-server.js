// A live QE Fleet for the tests: gunicorn from the server's virtualenv
// (QEFLEET_SERVER_PYTHON, default <repo>/.venv/bin/python) on a free port
// with a temporary SQLite database; and a proxy the tests control.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, openSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const REPO = process.env.QEFLEET_SERVER_DIR ?? resolve(import.meta.dirname, "../../..");
const PYTHON = process.env.QEFLEET_SERVER_PYTHON ?? join(REPO, ".venv", "bin", "python");

async function freePort() {
  const probe = net.createServer().listen(0, "127.0.0.1");
  await new Promise((done) => probe.once("listening", done));
  const { port } = /** @type {net.AddressInfo} */ (probe.address());
  await new Promise((done) => probe.close(done));
  return port;
}

export class LiveServer {
  /** @param {string[]} agents */
  static async create(agents) {
    const server = new LiveServer(mkdtempSync(join(tmpdir(), "qefleet-js-")), await freePort());
    server.manage("migrate", "--noinput");
    const script = `from qefleet.memory.fleet import register_agent, issue_token
for agent_id in ${JSON.stringify(agents)}:
    agent, _ = register_agent(agent_id, "test-executor", team="clients", swarm="clients")
    print(agent_id, issue_token(agent, label="js client tests")[1])`;
    const printed = server.manage("shell", "--no-imports", "-c", script);
    server.tokens = Object.fromEntries(printed.split("\n").map((line) => line.split(" ")).filter(([a]) => agents.includes(a)));
    await server.start();
    return server;
  }

  /** @param {string} directory @param {number} port */
  constructor(directory, port) {
    this.directory = directory;
    this.database = join(directory, "qefleet.sqlite3");
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    /** @type {Record<string, string>} */
    this.tokens = {};
    /** @type {import("node:child_process").ChildProcess | null} */
    this.process = null;
    // Explicit, so the CI's PostgreSQL and Redis settings never reach this server.
    this.env = { ...process.env, DATABASE_URL: `sqlite:///${this.database}`, SECRET_KEY: "client-tests-only",
      DEBUG: "0", HTTPS: "0", QUEUE_BROKER: "orm", RATE_LIMIT_BACKEND: "database", LOG_LEVEL: "WARNING" };
  }

  /** @param {...string} args */
  manage(...args) {
    return execFileSync(PYTHON, ["manage.py", ...args], { cwd: REPO, env: this.env, encoding: "utf8" });
  }

  async start() {
    const log = openSync(join(this.directory, "server.log"), "a");
    this.process = spawn(PYTHON, ["-m", "gunicorn", "qefleet.wsgi:application", "--bind", `127.0.0.1:${this.port}`,
      "--workers", "1", "--threads", "4", "--worker-class", "gthread"], { cwd: REPO, env: this.env, stdio: ["ignore", log, log] });
    for (const deadline = Date.now() + 120_000 /* a loaded CI machine starts Django slowly */; Date.now() < deadline; await sleep(100)) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch { /* not up yet */ }
    }
    throw new Error(`The server did not start; see ${this.directory}/server.log`);
  }

  async stop() {
    if (!this.process) return;
    const exited = new Promise((done) => this.process?.once("exit", done));
    this.process.kill("SIGTERM");
    await exited;
    this.process = null;
  }

  /** What an operator's "Put in shadow" stores, written straight into the database. @param {string} agent */
  putInShadow(agent) {
    const script = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute("
      + "\"UPDATE learning_learningprofile SET mode = 'shadow', shadow_since = datetime('now', '-1 minute') \""
      + "\"WHERE agent_id = (SELECT id FROM agent_registry WHERE agent_id = ?)\", (sys.argv[2],)); db.commit()";
    execFileSync(PYTHON, ["-c", script, this.database, agent]);
  }

  /** The server's own rows for one report, from its database. @param {string} key @returns {number[]} */
  executions(key) {
    const script = "import sqlite3, sys, json; print(json.dumps([r[0] for r in sqlite3.connect(sys.argv[1]).execute("
      + "'SELECT id FROM learning_execution WHERE idempotency_key = ?', (sys.argv[2],))]))";
    return JSON.parse(execFileSync(PYTHON, ["-c", script, this.database, key], { encoding: "utf8" }));
  }
}

/** A proxy that, by its plan per path suffix, forwards, forwards and drops the answer ("drop"), or answers 429. */
export class Proxy {
  /** @param {number} upstreamPort */
  constructor(upstreamPort) {
    /** @type {Record<string, string[]>} */
    this.plan = {};
    /** @type {{at: number, path: string, key: string | undefined}[]} */
    this.seen = [];
    this.server = http.createServer(async (request, response) => {
      const chunks = [];
      for await (const chunk of request) chunks.push(chunk);
      const path = request.url ?? "";
      this.seen.push({ at: performance.now(), path, key: /** @type {string | undefined} */ (request.headers["idempotency-key"]) });
      const steps = Object.entries(this.plan).find(([suffix, todo]) => path.endsWith(suffix) && todo.length)?.[1];
      const action = steps?.shift() ?? "forward";
      if (action === "429") {
        response.writeHead(429, { "Retry-After": "1", "Content-Type": "application/json" });
        response.end(JSON.stringify({ error: "rate_limited", message: "later" }));
        return;
      }
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !["host", "connection", "content-length"].includes(name)));
      const upstream = await fetch(`http://127.0.0.1:${upstreamPort}${path}`, {
        method: request.method, headers: /** @type {Record<string, string>} */ (headers),
        body: chunks.length ? Buffer.concat(chunks) : undefined });
      const body = Buffer.from(await upstream.arrayBuffer());
      if (action === "drop") {
        request.socket.destroy(); // the server has answered; the client never hears it
        return;
      }
      response.writeHead(upstream.status, { "Content-Type": upstream.headers.get("content-type") ?? "application/json" });
      response.end(body);
    });
  }

  async listen() {
    await new Promise((done) => this.server.listen(0, "127.0.0.1", () => done(undefined)));
    this.url = `http://127.0.0.1:${/** @type {net.AddressInfo} */ (this.server.address()).port}`;
    return this;
  }

  close() {
    this.server.closeAllConnections();
    this.server.close();
  }
}
