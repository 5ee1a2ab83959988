// BullMQ workload for tests/harness/shardwise_harness/bullmq_signals.py (BullMQ 5 + ioredis, the connection of
// docs/connect.md). Two roles:
//   node signals.mjs hang    empty TRIMMED (obliterate), take one job of it and exit without finishing it: its lock expires
//                            and a worker of the run role marks it stalled
//   node signals.mjs run     (KEPT emptied first) TRIMMED: JOBS jobs with removeOnComplete/removeOnFail, every FAIL_EVERY-th
//                            fails; KEPT: KEPT_JOBS jobs of about 20 ms, the completed set keeps the
//                            newest 50, global concurrency 3. Prints one JSON line of what the clients saw.
import { Queue, Worker } from 'bullmq';
import { connection } from './redis.mjs';

const prefixOf = (name) => `bull:{${name}}`;
const trimmedName = process.env.TRIMMED || 'high';
const keptName = process.env.KEPT || 'scheduled';
const jobs = Number(process.env.JOBS || 100);
const failEvery = Number(process.env.FAIL_EVERY || 5);
const keptJobs = Number(process.env.KEPT_JOBS || 30);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function hang() {
  const queue = new Queue(trimmedName, { connection: connection(), prefix: prefixOf(trimmedName) });
  // A clean queue (its event stream and id counter too), so the figures are this run's only.
  await queue.obliterate({ force: true });
  await queue.add('hang', { hang: true }, { removeOnComplete: true, removeOnFail: true });
  // A short lock, renewed never: the process leaves while the job is active.
  const worker = new Worker(trimmedName, async () => new Promise(() => {}), {
    connection: connection(), prefix: prefixOf(trimmedName), lockDuration: 2000, lockRenewTime: 60000,
    autorun: false,
  });
  worker.on('active', () => {
    console.log(JSON.stringify({ taken: true }));
    process.exit(0);
  });
  worker.run();
  await sleep(20000);
  console.log(JSON.stringify({ taken: false }));
  process.exit(1);
}

async function run() {
  const seen = { added: 0, completed: 0, failed: 0, stalled: 0, keptAdded: 0, keptCompleted: 0, duplicates: 0 };
  const finished = new Set();
  const trimmed = new Queue(trimmedName, { connection: connection(), prefix: prefixOf(trimmedName) });
  const kept = new Queue(keptName, { connection: connection(), prefix: prefixOf(keptName) });
  await kept.obliterate({ force: true });
  await kept.setGlobalConcurrency(3);
  const worker = new Worker(trimmedName, async (job) => {
    if (job.data.n !== undefined && job.data.n % failEvery === 0) {
      throw new Error(`job ${job.data.n} fails on purpose`);
    }
    return 'ok';
  }, { connection: connection(), prefix: prefixOf(trimmedName), concurrency: 4, stalledInterval: 1000 });
  const keptWorker = new Worker(keptName, async () => { await sleep(20); return 'ok'; },
    { connection: connection(), prefix: prefixOf(keptName), concurrency: 3 });
  const note = (job) => {
    if (finished.has(job.id)) seen.duplicates += 1;
    finished.add(job.id);
  };
  worker.on('completed', (job) => { seen.completed += 1; note(job); });
  worker.on('failed', (job) => { seen.failed += 1; note(job); });
  worker.on('stalled', () => { seen.stalled += 1; });
  keptWorker.on('completed', () => { seen.keptCompleted += 1; });

  const opts = { removeOnComplete: true, removeOnFail: true, attempts: 1 };
  const added = await trimmed.addBulk(Array.from({ length: jobs }, (_, n) => ({ name: 'work', data: { n: n + 1 }, opts })));
  seen.added = added.length;
  const keptAdded = await kept.addBulk(Array.from({ length: keptJobs }, (_, n) => ({
    name: 'work', data: { n }, opts: { removeOnComplete: 50, removeOnFail: 50 },
  })));
  seen.keptAdded = keptAdded.length;

  // The stalled job (the hang role's) comes back once its lock expired and is completed too.
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline
         && (seen.completed + seen.failed < jobs + 1 || seen.keptCompleted < keptJobs)) {
    await sleep(200);
  }
  await worker.close();
  await keptWorker.close();
  await trimmed.close();
  await kept.close();
  console.log(JSON.stringify(seen));
  process.exit(0);
}

if (process.argv[2] === 'hang') {
  await hang();
} else {
  await run();
}
