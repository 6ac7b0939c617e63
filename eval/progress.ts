/**
 * Progress of one model over one dataset on stderr: done/total, items per second, time left. On a terminal the line
 * is rewritten in place (at most 5 times a second); otherwise (CI logs, files) a line every 10 seconds and a final one.
 */
export class Progress {
  private done = 0;
  private readonly started = performance.now();
  private lastPrint = performance.now();
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    /** undefined: silent. */
    private readonly stream: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined,
  ) {
    this.tty = Boolean(stream?.isTTY);
  }

  tick(): void {
    this.done++;
    const now = performance.now();
    if (this.done < this.total && now - this.lastPrint >= (this.tty ? 200 : 10_000)) {
      this.lastPrint = now;
      this.print(false);
    }
  }

  /** Prints the final line; returns the elapsed seconds. */
  finish(): number {
    const seconds = this.elapsedSeconds();
    this.print(true);
    return seconds;
  }

  elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  private print(final: boolean): void {
    if (!this.stream) return;
    const seconds = this.elapsedSeconds();
    const rate = seconds > 0 ? this.done / seconds : 0;
    const left = rate > 0 ? (this.total - this.done) / rate : NaN;
    const text =
      `${this.label}: ${this.done}/${this.total} (${((100 * this.done) / this.total).toFixed(1)}%), ` +
      `${rate.toFixed(1)} items/s, ${final ? `${formatDuration(seconds)} elapsed` : `ETA ${formatDuration(left)}`}`;
    this.stream.write(this.tty ? `\r\x1b[K${text}${final ? '\n' : ''}` : `${text}\n`);
  }
}

/** m:ss or h:mm:ss; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return m >= 60 ? `${Math.floor(m / 60)}:${pad(m % 60)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
