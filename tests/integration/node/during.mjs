// Node.js BullMQ 5 + ioredis producer and worker (what most BullMQ users run) for
// tests/integration/bullmq_during.py, over the connection of docs/connect.md (redis.mjs):
//   QUEUES=critical,high,... STOP_FILE=... RUN_ID=... node during.mjs
// For each name of QUEUES, queue `<name>-node` with prefix `bull:{<name>}`: the same hash tag, so the same
// slot as the Python client's queue `<name>`, and its own jobs. A producer adds a job with a unique id every
// 100 ms and retries the same id until Redis acknowledges it; a worker (concurrency 10) counts each job it
// processes; a watchdog replaces a worker that stopped taking jobs (worker_replaced). When STOP_FILE appears
// the producers stop, the workers drain (up to 150 s; then they close without waiting for a job still
// active), and one JSON line tells what the clients saw: acknowledged, processed, lost (acknowledged, never
// processed), duplicated (processed twice), failed (jobs in the queues' failed sets) and their reasons, add and
// worker errors, worker replacements.
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
const seen = { add_errors: {}, worker_errors: {}, failed_events: {}, worker_replaced: {} };
let stopping = false;
const watch = setInterval(() => { stopping = stopping || existsSync(stopFile); }, 200);

const producer = connection();
const consumer = connection();
const queues = names.map((name) => new Queue(`${name}-node`, { connection: producer, prefix: `bull:{${name}}` }));
const lastTaken = new Map(); // queue name -> when its worker last took a job
function startWorker(name) {
  lastTaken.set(name, Date.now());
  const worker = new Worker(`${name}-node`, async (job) => {
    lastTaken.set(name, Date.now());
    processed.set(job.id, (processed.get(job.id) || 0) + 1);
    return 'ok';
  }, { connection: consumer, prefix: `bull:{${name}}`, concurrency: 10, drainDelay: 1 });
  worker.on('failed', (job, err) => count(seen.failed_events, String(err?.message ?? job?.failedReason).slice(0, 120)));
  worker.on('error', (err) => count(seen.worker_errors, String(err?.message ?? err).slice(0, 80)));
  return worker;
}
const workers = names.map(startWorker);

// Watchdog (docs/failure-modes.md, "A worker that stops taking jobs"): after its primary's host died, a
// BullMQ 5 worker's blocking connection (an ioredis Cluster of its own) can stay broken for good while
// the worker reports running and every other client works; the queue's jobs then wait forever. A worker
// whose queue answered and had jobs waiting, but that took none for WEDGED_MS, is closed without waiting
// and replaced by a new one (BullMQ's maintainers' advice); each replacement is counted in worker_replaced.
const WEDGED_MS = 30000;
let checking = false;
const watchdog = setInterval(async () => {
  if (checking) return;
  checking = true;
  for (const [i, name] of names.entries()) {
    if (Date.now() - lastTaken.get(name) < WEDGED_MS) continue;
    const asked = Date.now();
    try {
      const waiting = await queues[i].getWaitingCount();
      if (waiting === 0 || Date.now() - asked > 2000) { // idle, or its slot only just got a primary again
        lastTaken.set(name, Date.now());
        continue;
      }
    } catch { // the slot has no primary now: nothing a new worker could do; the clock restarts
      lastTaken.set(name, Date.now());
      continue;
    }
    count(seen.worker_replaced, name);
    const wedged = workers[i];
    workers[i] = startWorker(name);
    wedged.close(true).catch(() => {}); // its connection may never answer: do not wait for it
  }
  checking = false;
}, 5000);

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
const deadline = Date.now() + 150000;
const unprocessed = () => [...acked.keys()].some((id) => !processed.has(id));
while (Date.now() < deadline && unprocessed()) {
  await sleep(500);
}
clearInterval(watch);
clearInterval(watchdog);
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
