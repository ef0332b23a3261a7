// The Node client against a live QE Fleet: the task helper, a report that
// counts once after a dropped connection or a 429, the fallback and the
// on-disk queue while the server is down, memory and hints, and types that
// match the server's OpenAPI document.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { QEFleetClient } from "../src/index.js";
import { LiveServer, Proxy } from "./live-server.js";

const AGENTS = ["js-agent", "js-flaky", "js-offline", "js-memory", "js-shadow"];
/** @type {LiveServer} */
let server;

before(async () => { server = await LiveServer.create(AGENTS); });
after(async () => { await server?.stop(); });

/** @param {string} agent @param {Record<string, unknown>} [options] */
function client(agent, options = {}) {
  // Budgets a loaded CI machine cannot exhaust, unless the test sets its own bound.
  return new QEFleetClient({ url: server.url, token: server.tokens[agent], agent, timeoutMs: 60_000,
    fallbackAfterMs: 120_000, reportBudgetMs: 120_000, callBudgetMs: 120_000,
    stateDir: mkdtempSync(join(tmpdir(), "qefleet-js-state-")), ...options });
}

test("the committed types are what openapi-typescript makes of the server's document", async () => {
  const directory = mkdtempSync(join(tmpdir(), "qefleet-js-openapi-"));
  writeFileSync(join(directory, "openapi.json"), await (await fetch(`${server.url}/api/v1/openapi.json`)).text());
  execFileSync("npx", ["openapi-typescript", join(directory, "openapi.json"), "-o", join(directory, "schema.d.ts")],
    { stdio: "ignore" });
  assert.equal(readFileSync(join(directory, "schema.d.ts"), "utf8"),
    readFileSync(new URL("../src/schema.d.ts", import.meta.url), "utf8"), "run `npm run generate`");
});

test("a task reports its decision once, and a thrown error as a failure", async () => {
  const qe = client("js-agent");
  const run = await qe.task({ type: "unit-test" }, async (t) => {
    assert.equal(t.recommendation.source, "server");
    await t.report({ success: true, coverage: 0.9 });
    return t;
  });
  assert.deepEqual(server.executions(run.idempotencyKey), [run.delivery?.execution?.execution_id]);
  /** @type {any} */
  let failed;
  await assert.rejects(qe.task({ type: "unit-test" }, async (t) => { failed = t; throw new RangeError("bad"); }), RangeError);
  assert.equal(server.executions(failed.idempotencyKey).length, 1);
  assert.ok((await qe.learningStatus()).tasks >= 2);
});

test("a report whose answer was dropped is sent again and counts once", async () => {
  const proxy = await new Proxy(server.port).listen();
  try {
    proxy.plan["/executions"] = ["drop"];
    const qe = client("js-flaky", { url: proxy.url });
    const run = await qe.task({ type: "integration-test" }, async (t) => t);
    const attempts = proxy.seen.filter((seen) => seen.path.endsWith("/executions"));
    assert.equal(attempts.length, 2);
    assert.deepEqual(new Set(attempts.map((a) => a.key)), new Set([run.idempotencyKey]));
    assert.deepEqual(server.executions(run.idempotencyKey), [run.delivery?.execution?.execution_id]);
  } finally { proxy.close(); }
});

test("a 429 is retried after its Retry-After", async () => {
  const proxy = await new Proxy(server.port).listen();
  try {
    proxy.plan["/executions"] = ["429"];
    const run = await client("js-flaky", { url: proxy.url }).task({ type: "integration-test" }, async (t) => t);
    const [first, second] = proxy.seen.filter((seen) => seen.path.endsWith("/executions"));
    assert.ok(second.at - first.at >= 1000);
    assert.equal(first.key, second.key);
    assert.equal(server.executions(run.idempotencyKey).length, 1);
  } finally { proxy.close(); }
});

test("with the server stopped: a fallback within its bound, reports queued, delivered once after", async () => {
  const bound = 1500;
  const qe = client("js-offline", { fallbackAfterMs: bound, reportBudgetMs: 1000 });
  const learned = await qe.recommend({ type: "e2e-test" });
  /** @type {string[]} */
  const keys = [];
  await server.stop();
  try {
    const started = performance.now();
    const known = await qe.recommend({ type: "e2e-test" });
    assert.ok(performance.now() - started < bound + 500);
    assert.deepEqual([known.source, known.strategy, known.decision_id], ["last-known", learned.strategy, null]);
    assert.equal((await qe.recommend({ type: "never-seen" })).source, "default");
    for (const type of ["e2e-test", "never-seen"]) {
      const run = await qe.task({ type }, async (t) => t);
      assert.equal(run.delivery?.queued, true);
      keys.push(run.idempotencyKey);
    }
    assert.equal(qe.queued("js-offline").length, 2);
  } finally { await server.start(); }
  assert.equal(await qe.flush(), true);
  assert.equal(await qe.flush(), true);
  assert.equal(qe.queued("js-offline").length, 0);
  assert.deepEqual(keys.map((key) => server.executions(key).length), [1, 1]);
});

test("memory entries and hints round trip", async () => {
  const qe = client("js-memory");
  await qe.memoryPut("notes", "js/flaky", { tests: ["login"] }, { ttl_seconds: 600 });
  assert.deepEqual((await qe.memoryGet("notes", "js/flaky")).value, { tests: ["login"] });
  assert.deepEqual((await qe.memoryQuery("notes", { prefix: "js/" })).items.map((e) => e.key), ["js/flaky"]);
  const hint = await qe.addHint("js/tip", "run slow tests last");
  assert.deepEqual((await qe.hints({ prefix: "js/" })).items.map((h) => h.id), [hint.id]);
  const event = await qe.publishEvent("suite.finished", { passed: 3 });
  assert.deepEqual((await qe.events({ type: "suite.finished" })).items.map((e) => e.id), [event.id]);
});

test("an agent in shadow mode runs its own strategy, and a task run reports it", async () => {
  const qe = client("js-shadow");
  assert.equal((await qe.recommend({ type: "unit-test" }, undefined, { ownStrategy: "adaptive-retry" })).mode, "active");
  server.putInShadow("js-shadow");
  const run = await qe.task({ type: "unit-test" }, async (t) => t, { ownStrategy: "adaptive-retry" });
  assert.deepEqual([run.recommendation.mode, run.recommendation.strategy, run.recommendation.propensity],
    ["shadow", "adaptive-retry", 1]);
  assert.equal(server.executions(run.idempotencyKey).length, 1);
  await assert.rejects(qe.recommend({ type: "unit-test" }, undefined, { ownStrategy: "no-such-strategy" }),
    (error) => error instanceof Error && "field" in error && error.field === "own_strategy");
});
