// Hostile slot words, for the tests of everything that reads a topic segment (a subscriber's poll
// in messages/, ferryd's relay in daemon/src/topics): any topic member maps the segment writable
// and can scribble over the words only ferryd should write. Both tests run the same random
// programs of writes, scribbles and hand-overs, each with one op of its own (a poll, a loop turn).
// Daemon tests import it by path (sdk/dist/messages/testing/): test helpers are neither in the
// SDK's package nor among its exports.
import fc from 'fast-check';
import { encodePlain } from '../../proto/message-values.js';
import {
  SLOT_EPOCH,
  SLOT_PREV_SEQ,
  SLOT_SEQ_BEFORE,
  SLOT_STATE,
  TOPIC_FLAGS_OFFSET,
  TOPIC_OPENS_OFFSET,
} from '../../shm/topic-layout.js';
import type { TopicRingWriter, TopicSegment } from '../../shm/topic-ring.js';

/** The two slots the programs use. */
export const SCRIBBLED_SLOTS = [0, 1] as const;

/** Words ferryd owns: header words (word index) and slot words (slot, byte offset in its line a). */
const WORDS: readonly (number | { slot: number; o: number })[] = [
  TOPIC_OPENS_OFFSET / 4,
  TOPIC_FLAGS_OFFSET / 4,
  ...SCRIBBLED_SLOTS.flatMap((slot) =>
    [SLOT_STATE, SLOT_EPOCH, SLOT_PREV_SEQ, SLOT_SEQ_BEFORE].map((o) => ({ slot, o })),
  ),
];

/** `n` records into `slot`'s ring; garbage `v` into ferryd's word `w`; `slot` given to a new publisher. */
export type ScribbleOp =
  | { t: 'write'; slot: number; n: number }
  | { t: 'scribble'; w: number; v: number }
  | { t: 'reopen'; slot: number };

/** Programs of up to `maxLength` ops: ScribbleOps and the test's own op `own`. */
export function scribblePrograms<Own extends string>(
  own: Own,
  maxLength: number,
): fc.Arbitrary<(ScribbleOp | { t: Own })[]> {
  const slot = fc.nat(SCRIBBLED_SLOTS.length - 1);
  const op = fc.oneof(
    fc.record({ t: fc.constant('write' as const), slot, n: fc.integer({ min: 1, max: 40 }) }),
    fc.record({
      t: fc.constant('scribble' as const),
      w: fc.nat(WORDS.length - 1),
      // Small values, the edges of u32, anything.
      v: fc.oneof(fc.nat(8), fc.constantFrom(0x7fff_ffff, 0x8000_0000, 0xffff_ffff), fc.nat(0xffff_ffff)),
    }),
    fc.record({ t: fc.constant('reopen' as const), slot }),
    fc.record({ t: fc.constant(own) }),
  );
  return fc.array(op, { minLength: 1, maxLength });
}

/**
 * Carries out `op` on `seg`, whose slots' publishers are `writers`; `reopen` gives a slot to a new
 * publisher (ferryd's way, or the segment's own) and returns its writer.
 */
export function runScribbleOp(
  seg: TopicSegment,
  writers: TopicRingWriter[],
  op: ScribbleOp,
  reopen: (slot: number) => TopicRingWriter,
): void {
  if (op.t === 'write') {
    for (let i = 0; i < op.n; i++) (writers[op.slot] as TopicRingWriter).write(encodePlain({ i }));
  } else if (op.t === 'reopen') {
    writers[op.slot] = reopen(op.slot);
  } else {
    const w = WORDS[op.w] as number | { slot: number; o: number };
    Atomics.store(seg.words, typeof w === 'number' ? w : seg.slotWord(w.slot) + w.o / 4, op.v);
  }
}

/** A member adds 1 to OPENS: odd for good, every later hand-over looks under way to a reader that trusts it. */
export function leaveOpensOdd(seg: TopicSegment): void {
  Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
}

/**
 * A member adds 1 to the EPOCH of slot `slot`, which ferryd never gave to a publisher (FREE), and
 * 2 to OPENS (even: no hand-over looks under way), so that readers look at every slot's EPOCH.
 */
export function scribbleFreeEpoch(seg: TopicSegment, slot: number): void {
  Atomics.add(seg.words, seg.slotWord(slot) + SLOT_EPOCH / 4, 1);
  Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 2);
}
