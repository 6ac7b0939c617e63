/** Readiness as /readyz and /v2/health/ready report it: true after warm-up, false again once draining starts. */
export class ServerState {
  warmedUp = false;
  draining = false;
  /** Requests received and not yet answered (or abandoned): the drain waits for these before the server closes. */
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  get ready(): boolean {
    return this.warmedUp && !this.draining;
  }

  get inFlight(): number {
    return this.active;
  }

  requestStarted(): void {
    this.active++;
  }

  requestEnded(): void {
    this.active--;
    if (this.active === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Inference refused because the server is warming up or shutting down (503; warm-up runs the sessions directly). */
export class NotReadyError extends Error {
  constructor(readonly draining: boolean) {
    super(draining ? 'the server is shutting down' : 'the server is warming up');
    this.name = 'NotReadyError';
  }
}
