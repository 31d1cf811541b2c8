export interface BackoffOptions {
  /** First delay in ms (default 500). */
  baseMs?: number;
  /** Cap in ms (default 10000). */
  maxMs?: number;
  /** Multiplier per attempt (default 2). */
  factor?: number;
  /** Random in [0,1), injectable for tests (default Math.random). */
  random?: () => number;
}

/**
 * Exponential backoff with "full jitter" on the upper half: attempt 0 waits
 * base*[0.5,1), attempt n base*factor^n*[0.5,1), capped. The jitter spreads
 * the reconnects of many clients after a server restart; keeping half of the
 * delay fixed stops a lucky draw from hammering a server that is still down.
 * The cap is 10 s: a chat that stays offline for half a minute after the
 * server is back feels broken, and one attempt per 5-10 s per client is cheap.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 10000;
  const factor = opts.factor ?? 2;
  const random = opts.random ?? Math.random;
  const exp = Math.min(max, base * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(exp / 2 + (exp / 2) * random());
}
