/**
 * An ordinary ioredis client (no Ferry in it): `node redis-client.js PORT`. Pings, sets and gets
 * (a 1 MB value too), pipelines 200 INCRs, and prints what it got back as JSON.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

const redis = new Redis({
  port: Number(process.argv[2]),
  host: '127.0.0.1',
  enableReadyCheck: false,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null,
});
const big = Buffer.alloc(1_000_000);
for (let i = 0; i < big.length; i++) big[i] = i % 241;
const pong = await redis.ping();
await redis.set('greeting', 'hello');
const greeting = await redis.get('greeting');
await redis.set('big', big);
const back = await redis.getBuffer('big');
const pipeline = redis.pipeline();
for (let i = 0; i < 200; i++) pipeline.incr('counter');
const incrs = (await pipeline.exec()) ?? [];
const unknown = await redis.call('FLUSHALL').then(
  () => 'no error',
  (err: Error) => err.message,
);
await redis.quit();
console.log(
  JSON.stringify({
    pong,
    greeting,
    bigIntact:
      back !== null &&
      createHash('sha256').update(back).digest('hex') === createHash('sha256').update(big).digest('hex'),
    lastIncr: incrs.at(-1)?.[1],
    unknown,
  }),
);
