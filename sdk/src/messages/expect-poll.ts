/**
 * One kind of expected frame of a message channel (the reply a caller awaits, or the next request
 * of a peer whose requests come back to back): whether to poll for it, announced to the peer, and
 * judged by what polling gave.
 *
 * Why the peer's state: a round trip costs two wake-ups when both ends sleep and none when both
 * poll; one end polling alone saves only one of them. Each end judging polling by its own samples
 * (PollBudget) then settles as easily with both asleep as with both polling: from both asleep, an
 * exploration of one end alone shows little gain, so neither starts. Here each end announces in
 * the fifo it polls (the consumer's POLL_ID word, shm/fifo-layout.ts) the id of the frame it polls
 * for; the other end reads it before it sends that frame's answer (the caller: before the request,
 * is the server polling for exactly this request id?; the server: before its reply, is the caller
 * polling for exactly this reply?) and keeps one budget for each state of the peer. A caller whose
 * server polls for its request gets the reply in the handler's time, so polling for it wins; a
 * server whose caller polls for the reply gets the next request in the caller's own time, so
 * polling for it wins too: as soon as one end polls, the other sees it and joins within a round
 * trip, and both stay while polling keeps paying. On a loaded machine polls come late (the peer
 * was preempted), those budgets say sleep, the announcements stop, and both ends go back to the
 * budgets for a sleeping peer.
 *
 * The word is only a hint: wake-ups never depend on it (a sleeping end is rung through its wake
 * flags as before). A wrong value (garbage, a stale id, a peer that died while announcing) makes
 * this end poll at most `windowMs` per expectation, and then only while polling in that state has
 * paid; polls that end late (or were preempted) count as the worst sample, polls the notifier
 * did not make count as lost explorations (PollBudget.refused), so a peer that announces and does not
 * answer soon is not polled for again (a rare exploration aside). Every poll goes through the
 * attachment's notifier, which adds its own bounds (spin turns, the contention rule of
 * sys/run-wait.ts, backing off after a preemption).
 */
import { PollBudget } from './poll-budget.js';

/** What an expectation needs from its channel and attachment. */
export interface ExpectHost {
  /**
   * The notifier's mode: only 'adaptive' chooses; 'interrupt' never polls (nothing is announced)
   * and 'poll' always does (announced, so the peer knows).
   */
  readonly mode: 'adaptive' | 'interrupt' | 'poll';
  /** Wake-ups of the attachment's notifier from sleep so far (a counter). */
  wakeups(): number;
  /** Times the notifier found itself preempted while polling so far (a counter). */
  preemptions(): number;
  /** Keep adaptive polling on until `untilMs` (performance.now()). */
  pollUntil(untilMs: number): void;
  /**
   * Keep adaptive from polling on its own (its window after work) until `untilMs`: this end chose
   * to sleep for the frame, because sleeping has been paying.
   */
  sleepUntil(untilMs: number): void;
  /** Writes this end's announcement (0: none). */
  announce(id: number): void;
  /** Runs `fn` once when the notifier next arms to sleep. */
  beforeSleep(fn: () => void): void;
}

/** How expected frames came, for diagnostics (MessageChannel.roundTripStats). */
export interface ExpectStats {
  /** Expectations that polled / slept, by the peer's announced state. */
  polledPeerPolling: number;
  polledPeerAsleep: number;
  sleptPeerPolling: number;
  sleptPeerAsleep: number;
  /** Frames that came with no wake-up of this end since the expectation started / after one. */
  foundPolling: number;
  foundWoken: number;
  /** Polls whose frame came after the window (slept for it anyway), or during which this end was
   *  preempted: both count as the worst sample. */
  late: number;
  /** Polls the notifier did not make (it slept before the window: contended, backing off). */
  voided: number;
}

/** Stands in for the budget outside adaptive mode: nothing is chosen, so nothing is learned. */
const NO_BUDGET = new PollBudget(0);

export class ExpectPoll {
  readonly windowMs: number;
  readonly #host: ExpectHost;
  /** Budgets for a peer that did not announce polling for our frame [0], and for one that did [1]. */
  readonly #budgets: [PollBudget, PollBudget];
  #budget: PollBudget | null = null;
  #since = 0;
  #wakeups0 = 0;
  #preemptions0 = 0;
  #polling = false;
  /** The id this end announces now (0: none). */
  #announced = 0;
  #sleepHook = false;
  readonly stats: ExpectStats = {
    polledPeerPolling: 0,
    polledPeerAsleep: 0,
    sleptPeerPolling: 0,
    sleptPeerAsleep: 0,
    foundPolling: 0,
    foundWoken: 0,
    late: 0,
    voided: 0,
  };
  /** Made once: registered with beforeSleep on every polling expectation. */
  readonly #onSleep = (): void => {
    this.#sleepHook = false;
    this.#unannounce();
  };

  constructor(windowMs: number, host: ExpectHost) {
    this.windowMs = windowMs;
    this.#host = host;
    this.#budgets = [new PollBudget(windowMs), new PollBudget(windowMs)];
  }

  /** True between start() and end(). */
  get active(): boolean {
    return this.#budget !== null;
  }

  /** The budgets' averages (ms) by the peer's state, for tests and diagnostics. */
  get averages(): { peerAsleep: PollBudget['averages']; peerPolling: PollBudget['averages'] } {
    return { peerAsleep: this.#budgets[0].averages, peerPolling: this.#budgets[1].averages };
  }

  /** The budgets' counts by the peer's state (diagnostics). */
  get budgetStats(): { peerAsleep: PollBudget['stats']; peerPolling: PollBudget['stats'] } {
    return { peerAsleep: { ...this.#budgets[0].stats }, peerPolling: { ...this.#budgets[1].stats } };
  }

  /**
   * A frame is expected from `now`. `peerPolling`: the peer announced it polls for what we just
   * sent (read before sending it). `key` picks explorations (both ends pass request ids, so theirs
   * coincide). `announceId` (non-zero) is what the peer will look for in our announcement. Returns
   * whether this end polls for it.
   */
  start(now: number, key: number, peerPolling: boolean, announceId: number): boolean {
    const budget = this.#budgets[peerPolling ? 1 : 0];
    this.#budget = budget;
    this.#since = now;
    this.#wakeups0 = this.#host.wakeups();
    this.#preemptions0 = this.#host.preemptions();
    const mode = this.#host.mode;
    const poll = mode === 'adaptive' ? budget.start(now, key) : mode === 'poll';
    if (mode !== 'adaptive') this.#budget = NO_BUDGET;
    this.#polling = poll;
    const s = this.stats;
    if (poll) {
      if (peerPolling) s.polledPeerPolling++;
      else s.polledPeerAsleep++;
      this.#host.pollUntil(now + this.windowMs);
      this.#announced = announceId >>> 0;
      this.#host.announce(this.#announced);
      if (!this.#sleepHook) {
        this.#sleepHook = true;
        this.#host.beforeSleep(this.#onSleep);
      }
    } else {
      if (peerPolling) s.sleptPeerPolling++;
      else s.sleptPeerAsleep++;
      // The notifier's own window would poll after this send anyway whenever its contention rule
      // reads clear: on a loaded machine that made adaptive round trips 15-35% slower than interrupt
      // mode's (a spinning process loses the scheduler's favour for sleepers), and its polls counted
      // as sleeps here. The budget chose sleep: on a busy machine the notifier sleeps (on an idle
      // one, or with a core of its own, its window stays: there it found the frames, sys/run-wait.ts).
      if (mode === 'adaptive') this.#host.sleepUntil(now + this.windowMs);
      this.#unannounce();
    }
    return poll;
  }

  /** The expected frame came at `now`. */
  end(now: number): void {
    const budget = this.#budget;
    if (budget === null) return;
    this.#budget = null;
    this.#unannounce();
    const woken = this.#host.wakeups() !== this.#wakeups0;
    if (woken) this.stats.foundWoken++;
    else this.stats.foundPolling++;
    if (this.#polling && this.#host.preemptions() !== this.#preemptions0) {
      // Polling lost the CPU (no idle core): it cost the machine, whatever the frame's time.
      this.stats.late++;
      budget.end(now, true);
      return;
    }
    if (this.#polling && now - this.#since > this.windowMs) this.stats.late++;
    else if (this.#polling && woken) {
      // The notifier slept although asked to poll (no idle core: the contention rule; or backing
      // off after a preemption): see PollBudget.refused.
      this.stats.voided++;
      budget.refused(now);
      return;
    }
    budget.end(now);
  }

  /** The channel ended: nothing is expected, nothing announced. */
  stop(): void {
    this.#budget?.cancel();
    this.#budget = null;
    this.#unannounce();
  }

  #unannounce(): void {
    if (this.#announced === 0) return;
    this.#announced = 0;
    this.#host.announce(0);
  }
}
