// Node.js BullMQ 5 + ioredis producer and worker (what most BullMQ users run) for
// tests/integration/bullmq_during.py, over the connection of docs/connect.md (redis.mjs):
//   QUEUES=critical,high,... STOP_FILE=... RUN_ID=... node during.mjs
// For each name of QUEUES, queue `<name>-node` with prefix `bull:{<name>}`: the same hash tag, so the same
// slot as the Python client's queue `<name>`, and its own jobs. A producer adds a job with a unique id every
// 100 ms and retries the same id until Redis acknowledges it; a worker (concurrency 10) counts each job it
// processes. When STOP_FILE appears the producers stop, the workers drain (up to 3 minutes), and one JSON
// line tells what the clients saw: acknowledged, processed, lost (acknowledged, never processed), duplicated
// (processed twice), failed (jobs in the queues' failed sets) and their reasons, add and worker errors.
import { existsSync } from 'node:fs';
import { Queue, Worker } from 'bullmq';
import { connection } from './redis.mjs';

const names = process.env.QUEUES.split(',');
const stopFile = process.env.STOP_FILE;
const runId = process.env.RUN_ID || `n${Date.now()}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (map, key) => { map[key] = (map[key] || 0) + 1; };

const acked = new Map(); // job id -> queue
const processed = new Map(); // job id -> times processed
const seen = { add_errors: {}, worker_errors: {}, failed_events: {} };
let stopping = false;
const watch = setInterval(() => { stopping = stopping || existsSync(stopFile); }, 200);

const producer = connection();
const consumer = connection();
const queues = names.map((name) => new Queue(`${name}-node`, { connection: producer, prefix: `bull:{${name}}` }));
const workers = names.map((name) => {
  const worker = new Worker(`${name}-node`, async (job) => {
    processed.set(job.id, (processed.get(job.id) || 0) + 1);
    return 'ok';
  }, { connection: consumer, prefix: `bull:{${name}}`, concurrency: 10, drainDelay: 1 });
  worker.on('failed', (job, err) => count(seen.failed_events, String(err?.message ?? job?.failedReason).slice(0, 120)));
  worker.on('error', (err) => count(seen.worker_errors, String(err?.message ?? err).slice(0, 80)));
  return worker;
});

async function produce(queue) {
  let n = 0;
  while (!stopping) {
    n += 1;
    const jobId = `${queue.name}-${runId}-${n}`; // unique: BullMQ ignores an id it knows
    for (;;) {
      try {
        await Promise.race([queue.add('during', { n }, { jobId, removeOnComplete: false }),
          sleep(3000).then(() => { throw new Error('add timed out after 3 s'); })]);
        acked.set(jobId, queue.name);
        break;
      } catch (err) {
        count(seen.add_errors, String(err?.message ?? err).slice(0, 80));
        if (stopping) break;
        await sleep(200);
      }
    }
    await sleep(100);
  }
}

await Promise.all(queues.map(produce));
const deadline = Date.now() + 180000;
while (Date.now() < deadline && [...acked.keys()].some((id) => !processed.has(id))) {
  await sleep(500);
}
clearInterval(watch);
await Promise.all(workers.map((worker) => worker.close()));
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
const lost = [...acked.keys()].filter((id) => !processed.has(id));
console.log(JSON.stringify({
  client: 'Node.js BullMQ 5 + ioredis',
  queues: queues.map((queue) => queue.name),
  acknowledged: acked.size,
  processed: [...acked.keys()].filter((id) => processed.has(id)).length,
  lost: lost.length,
  lost_ids: lost.slice(0, 10),
  duplicated: [...processed.values()].filter((times) => times > 1).length,
  failed,
  failed_reasons: failedReasons,
  ...seen,
}));
process.exit(0);
