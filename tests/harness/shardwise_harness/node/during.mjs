// Node.js BullMQ + ioredis producer and worker (what most BullMQ users run), configured exactly as
// docs/connect.md tells applications to: the connection of its redis.mjs and the worker options it exports
// (workerOptions). No watchdog, no extra retry layer in the worker: what this client sees is what an
// application sees.
//   QUEUES=critical,high,... STOP_FILE=... RESULT_FILE=... RUN_ID=... [SUFFIX=-node] [PAUSE_MS=100] node during.mjs
// For each name of QUEUES, queue `<name><SUFFIX>` with prefix `bull:{<name>}`: the same hash tag, so the same
// slot as the Python client's queue `<name>`, and its own jobs. A producer adds a job with a unique id every
// PAUSE_MS and retries the same id until Redis acknowledges it (an at-least-once add, as an application's
// producer would); a worker (concurrency 8, as in docs/connect.md) records when it processed each job. When
// STOP_FILE appears the producers stop, the workers drain (up to DRAIN_MS; then they close without waiting for
// a job still active), and RESULT_FILE gets one JSON document of what the clients saw: acknowledged, processed, lost
// (acknowledged, never processed, with when each was acknowledged), duplicated (processed twice), failed (jobs in
// the queues' failed sets) and their reasons, add and worker errors, and per queue the times (ms since the epoch)
// of every acknowledged add and every first processing, from which the caller measures the gaps.
import { existsSync, writeFileSync } from 'node:fs';
import { Queue, Worker } from 'bullmq';
import * as documented from './redis.mjs';

const names = process.env.QUEUES.split(',');
const suffix = process.env.SUFFIX ?? '-node';
const stopFile = process.env.STOP_FILE;
const runId = process.env.RUN_ID || `n${Date.now()}`;
const pauseMs = Number(process.env.PAUSE_MS ?? 100);
const drainMs = Number(process.env.DRAIN_MS ?? 150000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (map, key) => { map[key] = (map[key] || 0) + 1; };

const acked = new Map(); // job id -> [queue, when acknowledged]
const processed = new Map(); // job id -> times processed
const timeline = Object.fromEntries(names.map((name) => [name, { acked: [], processed: [] }]));
const seen = { add_errors: {}, worker_errors: {}, failed_events: {} };
let stopping = false;
const watch = setInterval(() => { stopping = stopping || existsSync(stopFile); }, 200);

const producer = documented.connection();
const consumer = documented.connection();
const queues = names.map((name) => new Queue(`${name}${suffix}`, { connection: producer, prefix: `bull:{${name}}` }));
const workers = names.map((name) => {
  const worker = new Worker(`${name}${suffix}`, async (job) => {
    const times = (processed.get(job.id) || 0) + 1;
    processed.set(job.id, times);
    if (times === 1) timeline[name].processed.push(Date.now());
    return 'ok';
  }, { ...(documented.workerOptions ?? {}), connection: consumer, prefix: `bull:{${name}}`, concurrency: 8 });
  worker.on('failed', (job, err) => count(seen.failed_events, String(err?.message ?? job?.failedReason).slice(0, 120)));
  worker.on('error', (err) => count(seen.worker_errors, String(err?.message ?? err).slice(0, 80)));
  return worker;
});

async function produce(queue, name) {
  let n = 0;
  while (!stopping) {
    n += 1;
    const jobId = `${queue.name}-${runId}-${n}`; // unique: BullMQ ignores an id it knows
    for (;;) {
      try {
        // A safety bound only (the test must end): ioredis retries and redirects the add itself, and an
        // application awaits it; a shorter bound would measure this harness instead of the client.
        await Promise.race([queue.add('during', { n }, { jobId, removeOnComplete: false }),
          sleep(60000).then(() => { throw new Error('add timed out after 60 s'); })]);
        const now = Date.now();
        acked.set(jobId, [name, now]);
        timeline[name].acked.push(now);
        break;
      } catch (err) {
        count(seen.add_errors, String(err?.message ?? err).slice(0, 80));
        if (stopping) break;
        await sleep(200);
      }
    }
    await sleep(pauseMs);
  }
}

await Promise.all(queues.map((queue, i) => produce(queue, names[i])));
const deadline = Date.now() + drainMs;
const unprocessed = () => [...acked.keys()].some((id) => !processed.has(id));
while (Date.now() < deadline && unprocessed()) {
  await sleep(500);
}
clearInterval(watch);
await Promise.all(workers.map((worker) => worker.close(unprocessed()))); // force: a stuck job must not hold the figures
const failedReasons = {};
let failed = 0;
for (const queue of queues) {
  for (const job of await queue.getFailed(0, -1)) {
    failed += 1;
    count(failedReasons, String(job.failedReason).slice(0, 120));
  }
}
await Promise.all(queues.map((queue) => queue.close()));
await producer.quit();
await consumer.quit();
const lost = [...acked.entries()].filter(([id]) => !processed.has(id)).map(([id, [name, when]]) => [id, name, when]);
const duplicated = [...processed.entries()].filter(([, times]) => times > 1).map(([id]) => [id, ...acked.get(id)]);
writeFileSync(process.env.RESULT_FILE, JSON.stringify({
  client: 'Node.js BullMQ + ioredis over the redis.mjs it was given (docs/connect.md unless a test says otherwise)',
  queues: queues.map((queue) => queue.name),
  acknowledged: acked.size,
  processed: [...acked.keys()].filter((id) => processed.has(id)).length,
  lost: lost.length,
  lost_ids: lost.slice(0, 10).map(([id]) => id),
  lost_jobs_at: lost,
  duplicated: duplicated.length,
  duplicated_at: duplicated,
  failed,
  failed_reasons: failedReasons,
  timeline,
  ...seen,
}));
console.log(`during.mjs: ${acked.size} acknowledged, ${lost.length} lost, ${duplicated.length} duplicated, ${failed} failed`);
process.exit(0);
