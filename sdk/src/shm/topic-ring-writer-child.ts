// A topic publisher on another thread (topic-ring-concurrent.test.ts): attaches the segment by a
// duplicated fd and writes `count` records whose payload is their index, as fast as it can.
import { workerData } from 'node:worker_threads';
import { dup } from '../sys/fd.js';
import { TopicRingWriter, TopicSegment } from './topic-ring.js';

const { fd, count } = workerData as { fd: number; count: number };
const seg = TopicSegment.attach(dup(fd));
const w = new TopicRingWriter(seg, 0);
const payload = Buffer.alloc(4 + (count % 13));
for (let i = 0; i < count; i++) {
  payload.writeUInt32LE(i, 0);
  w.write(payload.subarray(0, 4 + (i % 13)));
}
seg.release();
