/**
 * An ordinary program that fetches from a worker thread (no Ferry in it):
 * `node worker-fetch.js URL`. Prints what the worker got, as JSON.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url), { workerData: process.argv[2] });
  worker.once('message', (m) => console.log(JSON.stringify(m)));
  worker.once('error', (err) => console.log(JSON.stringify({ error: String(err) })));
} else {
  const res = await fetch(String(workerData));
  parentPort?.postMessage({ status: res.status, body: await res.text() });
}
