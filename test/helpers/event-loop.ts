/** Runs `work` while a 1 ms timer measures the longest gap between its ticks (the longest event-loop block). */
export async function longestBlock<T>(work: () => Promise<T>): Promise<{ result: T; blockMs: number; wallMs: number }> {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  try {
    const result = await work();
    return { result, blockMs: Math.max(longest, performance.now() - last), wallMs: performance.now() - started };
  } finally {
    clearInterval(ticker);
  }
}
