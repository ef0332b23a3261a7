// QE Fleet's client for Node 20 agents: no runtime dependency beyond Node.
// Types come from the server's OpenAPI document (src/schema.d.ts, made by
// openapi-typescript: `npm run generate`); `npm run typecheck` checks this
// file against them. The rules match the Python client: retries under one
// Idempotency-Key on 429 (Retry-After honoured), 502-504 and connection
// errors; a recommendation that falls back within `fallbackAfterMs` to the
// last strategy the server gave for the task type, else the default; reports
// kept in a bounded on-disk queue (the Python client's layout) until delivered.

import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** @typedef {import("./schema.js").components["schemas"]} Schemas */
/** @typedef {Schemas["TaskIn"]} Task */
/** @typedef {Schemas["ResultIn"]} Result */
/** @typedef {Schemas["ExecutedActionIn"]} Action */
/** @typedef {Schemas["ExecutionIn"]} ExecutionReport */
/** @typedef {Schemas["ExecutionOut"]} Execution */
/** @typedef {Schemas["LearningOut"]} LearningStatus */
/** @typedef {Schemas["EntryOut"]} MemoryEntry */
/** @typedef {Schemas["HintOut"]} Hint */
/** @typedef {Schemas["EventOut"]} Event */
/** @typedef {Omit<Schemas["RecommendationOut"], "decision_id"> & {decision_id: string | null, source: "server" | "last-known" | "default"}} Recommendation */
/** @typedef {{idempotencyKey: string, execution: Execution | null, queued: boolean}} Delivery */
/** @typedef {{type: string, id?: string, complexity?: number, available_resources?: number} & Partial<Task>} TaskInput */

const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export class ApiError extends Error {
  /** @param {number} status @param {any} body */
  constructor(status, body) {
    super(`${status} ${body?.error ?? "error"}: ${body?.message ?? ""}`);
    this.status = status;
    this.code = body?.error;
    this.field = body?.field;
  }
}

export class Unavailable extends Error {}

/** The configured default: the server's own default catalog strategy, the safe one. */
export const DEFAULT_STRATEGY = Object.freeze({ strategy: "sequential-execution", parallelization: 0, retry_policy: "fixed" });

/** @param {string | null} value @returns {number | null} seconds */
export function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/** @param {string} path @param {unknown} data */
function writeAtomically(path, data) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(data));
  renameSync(temporary, path);
}

/** @param {TaskInput} task @returns {Task} */
function asTask(task) {
  return { id: randomUUID().replaceAll("-", ""), complexity: 0.5, available_resources: 1, previous_attempts: 0, ...task };
}

export class QEFleetClient {
  /**
   * @param {{url?: string, token?: string, agent?: string, timeoutMs?: number, fallbackAfterMs?: number,
   *   reportBudgetMs?: number, callBudgetMs?: number, maxAttempts?: number, backoffBaseMs?: number,
   *   backoffCapMs?: number, stateDir?: string, maxQueuedReports?: number,
   *   defaultStrategy?: {strategy: string, parallelization: number, retry_policy: Action["retry_policy"]}}} [options]
   */
  constructor(options = {}) {
    const env = process.env;
    this.url = (options.url ?? env.QEFLEET_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
    this.token = options.token ?? env.QEFLEET_TOKEN;
    this.agent = options.agent ?? env.QEFLEET_AGENT;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fallbackAfterMs = options.fallbackAfterMs ?? 3_000;
    this.reportBudgetMs = options.reportBudgetMs ?? 15_000;
    this.callBudgetMs = options.callBudgetMs ?? 15_000;
    this.maxAttempts = options.maxAttempts ?? 6;
    this.backoffBaseMs = options.backoffBaseMs ?? 250;
    this.backoffCapMs = options.backoffCapMs ?? 8_000;
    this.stateDir = options.stateDir ?? env.QEFLEET_STATE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "qefleet");
    this.maxQueuedReports = options.maxQueuedReports ?? 1000;
    this.defaultStrategy = options.defaultStrategy ?? DEFAULT_STRATEGY;
  }

  /** @param {string | undefined} agent */
  agentId(agent) {
    const id = agent ?? this.agent;
    if (!id) throw new Error("No agent id: pass agent or set QEFLEET_AGENT.");
    return id;
  }

  /** @param {string} agent */
  agentDir(agent) {
    const server = createHash("sha256").update(this.url).digest("hex").slice(0, 12);
    return join(this.stateDir, server, agent);
  }

  /**
   * One call with retries within `budgetMs`; resolves to the parsed body.
   * @param {string} method @param {string} path @param {number} budgetMs
   * @param {{body?: unknown, headers?: Record<string, string>}} [extra]
   */
  async send(method, path, budgetMs, extra = {}) {
    const deadline = Date.now() + budgetMs;
    /** @type {Record<string, string>} */
    const headers = { "User-Agent": "qefleet-client-js/0.1.0", ...extra.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (extra.body !== undefined) headers["Content-Type"] = "application/json";
    for (let attempt = 0; ; attempt++) {
      /** @type {Response | Error} */
      let outcome;
      try {
        outcome = await fetch(`${this.url}/api/v1${path}`, {
          method, headers, body: extra.body === undefined ? undefined : JSON.stringify(extra.body),
          signal: AbortSignal.timeout(Math.max(50, Math.min(this.timeoutMs, deadline - Date.now()))),
        });
      } catch (error) {
        outcome = /** @type {Error} */ (error);
      }
      const retryable = outcome instanceof Error || RETRY_STATUSES.has(outcome.status);
      if (retryable && attempt + 1 < this.maxAttempts) {
        let delay = Math.min(this.backoffCapMs, this.backoffBaseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        const asked = outcome instanceof Error ? null : retryAfterSeconds(outcome.headers.get("Retry-After"));
        if (asked !== null) delay = asked * 1000;
        if (Date.now() + delay < deadline) {
          if (!(outcome instanceof Error)) await outcome.body?.cancel();
          await sleep(delay);
          continue;
        }
      }
      if (outcome instanceof Error) throw new Unavailable(`${method} ${path}: ${outcome.message}`, { cause: outcome });
      if (retryable || outcome.status >= 500) throw new Unavailable(`${method} ${path}: HTTP ${outcome.status}`);
      const text = await outcome.text();
      const body = text ? JSON.parse(text) : null;
      if (outcome.status >= 400) throw new ApiError(outcome.status, body);
      return body;
    }
  }

  // --- learning ------------------------------------------------------------

  /**
   * The strategy to run a task with; never rejects for an unreachable server. `ownStrategy`: the catalog
   * strategy the agent means to run, which an agent in shadow mode gets back (`mode` "shadow").
   * @param {TaskInput} taskInput @param {string} [agent] @param {{ownStrategy?: string}} [options]
   * @returns {Promise<Recommendation>}
   */
  async recommend(taskInput, agent, options = {}) {
    const id = this.agentId(agent);
    const task = asTask(taskInput);
    const path = join(this.agentDir(id), "last-strategies.json");
    const body = options.ownStrategy === undefined ? { task } : { task, own_strategy: options.ownStrategy };
    try {
      const recommendation = await this.send("POST", `/agents/${encodeURIComponent(id)}/recommendations`,
        this.fallbackAfterMs, { body });
      this.#remember(path, task.type, recommendation);
      return { ...recommendation, source: "server" };
    } catch (error) {
      if (!(error instanceof Unavailable)) throw error;
      return this.#fallback(path, task.type);
    }
  }

  /** @param {string} path @param {string} taskType @param {any} recommendation */
  #remember(path, taskType, recommendation) {
    try {
      mkdirSync(join(path, ".."), { recursive: true });
      let known = {};
      try { known = JSON.parse(readFileSync(path, "utf8")); } catch { /* none yet */ }
      const { alternatives, ...kept } = recommendation;
      writeAtomically(path, { ...known, [taskType]: kept });
    } catch (error) {
      console.warn(`qefleet: could not keep the last strategy in ${path}: ${error}`);
    }
  }

  /** @param {string} path @param {string} taskType @returns {Recommendation} */
  #fallback(path, taskType) {
    let known = null;
    try { known = JSON.parse(readFileSync(path, "utf8"))[taskType] ?? null; } catch { /* nothing kept */ }
    const base = known ?? { ...this.defaultStrategy, state_key: taskType, confidence: 0, expected_improvement: 0,
      explored: false, propensity: 1, policy_version: null,
      action_key: `${this.defaultStrategy.strategy}:${this.defaultStrategy.parallelization}:${this.defaultStrategy.retry_policy}` };
    return { ...base, decision_id: null, abtest: null, alternatives: [], source: known ? "last-known" : "default",
      reasoning: known ? "QE Fleet could not be reached; the last strategy it recommended for this task type."
        : "QE Fleet could not be reached; the configured default strategy." };
  }

  /**
   * Report how a task went: retried under one Idempotency-Key, queued on disk when the server stays away.
   * @param {TaskInput} task @param {Result} result
   * @param {{recommendation?: Recommendation, action?: Action, feedback?: Schemas["FeedbackIn"],
   *   idempotencyKey?: string, agent?: string}} [options]
   * @returns {Promise<Delivery>}
   */
  async report(task, result, options = {}) {
    const id = this.agentId(options.agent);
    const decisionId = options.recommendation?.decision_id ?? null;
    const action = options.action ?? (options.recommendation && !decisionId ? {
      strategy: options.recommendation.strategy, parallelization: options.recommendation.parallelization,
      retry_policy: /** @type {Action["retry_policy"]} */ (options.recommendation.retry_policy) } : undefined);
    if (!decisionId && !action) throw new Error("Report what ran: pass the recommendation it followed, or an action.");
    /** @type {ExecutionReport} */
    const body = { task: asTask(task), result, ...(decisionId ? { decision_id: decisionId } : { action }),
      ...(options.feedback ? { feedback: options.feedback } : {}) };
    const key = options.idempotencyKey ?? randomUUID();
    if (await this.flush(id)) {
      try {
        return { idempotencyKey: key, execution: await this.#sendReport(id, body, key), queued: false };
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
      }
    }
    this.#enqueue(id, key, body);
    return { idempotencyKey: key, execution: null, queued: true };
  }

  /** @param {string} agent @param {unknown} body @param {string} key @returns {Promise<Execution>} */
  #sendReport(agent, body, key) {
    return this.send("POST", `/agents/${encodeURIComponent(agent)}/executions`, this.reportBudgetMs,
      { body, headers: { "Idempotency-Key": key } });
  }

  /** @param {string} agent */
  queueDir(agent) { return join(this.agentDir(agent), "queue"); }

  /** @param {string} agent @returns {string[]} queued report files, oldest first */
  queued(agent) {
    try {
      return readdirSync(this.queueDir(agent)).filter((name) => name.endsWith(".json")).sort();
    } catch { return []; }
  }

  /** @param {string} agent @param {string} key @param {unknown} body */
  #enqueue(agent, key, body) {
    const directory = this.queueDir(agent);
    mkdirSync(directory, { recursive: true });
    const name = `${String(process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n).padStart(20, "0")}-${key}.json`;
    writeAtomically(join(directory, name), { agent, idempotency_key: key, body });
    const waiting = this.queued(agent);
    for (const dropped of waiting.slice(0, Math.max(0, waiting.length - this.maxQueuedReports))) {
      console.warn(`qefleet: report queue full (${this.maxQueuedReports}): dropped the oldest report ${dropped}`);
      rmSync(join(directory, dropped), { force: true });
    }
  }

  /**
   * Deliver the queued reports, oldest first; resolves to whether none is left.
   * @param {string} [agent]
   */
  async flush(agent) {
    const id = this.agentId(agent);
    const directory = this.queueDir(id);
    for (const name of this.queued(id)) {
      let queued;
      try { queued = JSON.parse(readFileSync(join(directory, name), "utf8")); } catch { continue; }
      try {
        await this.#sendReport(queued.agent, queued.body, queued.idempotency_key);
      } catch (error) {
        if (error instanceof Unavailable) return false;
        // Refused for good (4xx): kept aside for a person, never resent.
        console.error(`qefleet: QE Fleet refused queued report ${queued.idempotency_key}: ${error}`);
        mkdirSync(join(this.agentDir(id), "rejected"), { recursive: true });
        renameSync(join(directory, name), join(this.agentDir(id), "rejected", name));
        continue;
      }
      rmSync(join(directory, name), { force: true });
    }
    return true;
  }

  /**
   * Run `work` as one task: recommend, time it, report once. A rejection of `work` is reported as a
   * failure and rethrown; returning without `t.report(...)` reports a success.
   * @template T
   * @param {TaskInput} taskInput
   * @param {(t: TaskRun) => Promise<T>} work
   * @param {{agent?: string, ownStrategy?: string}} [options]
   * @returns {Promise<T>}
   */
  async task(taskInput, work, options = {}) {
    const task = asTask(taskInput);
    const recommendation = await this.recommend(task, options.agent, { ownStrategy: options.ownStrategy });
    const run = new TaskRun(this, task, this.agentId(options.agent), recommendation);
    let value;
    try {
      value = await work(run);
    } catch (error) {
      if (!run.delivery) {
        const name = error instanceof Error ? error.constructor.name : "Error";
        await run.report({ success: false, errors: [{ type: name, message: String(error).slice(0, 2000) }] });
      }
      throw error;
    }
    if (!run.delivery) await run.report({ success: true });
    return value;
  }

  /** @param {number} executionId @param {number} rating @param {string[]} [issues] @param {string} [agent] */
  feedback(executionId, rating, issues = [], agent) {
    return this.send("POST", `/agents/${encodeURIComponent(this.agentId(agent))}/executions/${executionId}/feedback`,
      this.callBudgetMs, { body: { rating, issues } });
  }

  /** @param {string} [agent] @returns {Promise<LearningStatus>} */
  learningStatus(agent) {
    return this.send("GET", `/agents/${encodeURIComponent(this.agentId(agent))}/learning`, this.callBudgetMs);
  }

  // --- memory, hints, events -------------------------------------------------

  /** @param {string} partition @param {string} key */
  #entry(partition, key) {
    return `/memory/${encodeURIComponent(partition)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  /** @param {Record<string, string | number | undefined>} params */
  #query(params) {
    const kept = Object.entries(params).filter(([, v]) => v !== undefined && v !== "");
    return kept.length ? `?${new URLSearchParams(kept.map(([k, v]) => [k, String(v)]))}` : "";
  }

  /** @param {string} partition @param {string} key @returns {Promise<MemoryEntry>} */
  memoryGet(partition, key) { return this.send("GET", this.#entry(partition, key), this.callBudgetMs); }

  /** @param {string} partition @param {string} key @param {unknown} value @param {Omit<Schemas["EntryIn"], "value">} [options] @returns {Promise<MemoryEntry>} */
  memoryPut(partition, key, value, options = {}) {
    return this.send("PUT", this.#entry(partition, key), this.callBudgetMs, { body: { value, ...options } });
  }

  /** @param {string} partition @param {string} key */
  memoryDelete(partition, key) { return this.send("DELETE", this.#entry(partition, key), this.callBudgetMs); }

  /** @param {string} partition @param {{prefix?: string, limit?: number, cursor?: string}} [options] @returns {Promise<Schemas["Page_EntryOut_"]>} */
  memoryQuery(partition, options = {}) {
    return this.send("GET", `/memory/${encodeURIComponent(partition)}${this.#query(options)}`, this.callBudgetMs);
  }

  /** @param {string} key @param {unknown} value @param {Omit<Schemas["HintIn"], "key" | "value">} [options] @returns {Promise<Hint>} */
  addHint(key, value, options = {}) { return this.send("POST", "/hints", this.callBudgetMs, { body: { key, value, ...options } }); }

  /** @param {{prefix?: string, limit?: number, cursor?: string}} [options] @returns {Promise<Schemas["Page_HintOut_"]>} */
  hints(options = {}) { return this.send("GET", `/hints${this.#query(options)}`, this.callBudgetMs); }

  /** @param {string} type @param {Record<string, unknown>} [payload] @returns {Promise<Event>} */
  publishEvent(type, payload = {}) { return this.send("POST", "/events", this.callBudgetMs, { body: { type, payload } }); }

  /** @param {{type?: string, source?: string, since?: string, until?: string, limit?: number, cursor?: string}} [options] @returns {Promise<Schemas["Page_EventOut_"]>} */
  events(options = {}) { return this.send("GET", `/events${this.#query(options)}`, this.callBudgetMs); }
}

/** One task from recommendation to report: the decision id, the timing and one Idempotency-Key. */
export class TaskRun {
  /** @param {QEFleetClient} client @param {Task} task @param {string} agent @param {Recommendation} recommendation */
  constructor(client, task, agent, recommendation) {
    this.client = client;
    this.task = task;
    this.agent = agent;
    this.recommendation = recommendation;
    this.idempotencyKey = randomUUID();
    this.started = performance.now();
    /** @type {Delivery | null} */
    this.delivery = null;
  }

  /** @param {Partial<Result> & {success: boolean}} result @param {{feedback?: Schemas["FeedbackIn"]}} [options] */
  async report(result, options = {}) {
    if (this.delivery) throw new Error("This task was reported already.");
    const full = { execution_time_ms: Math.round(performance.now() - this.started), errors: [], ...result };
    this.delivery = await this.client.report(this.task, full, { recommendation: this.recommendation,
      feedback: options.feedback, idempotencyKey: this.idempotencyKey, agent: this.agent });
    return this.delivery;
  }
}
