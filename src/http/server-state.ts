/** Readiness as /readyz and /v2/health/ready report it: true after warm-up, false again once draining starts. */
export class ServerState {
  warmedUp = false;
  draining = false;

  get ready(): boolean {
    return this.warmedUp && !this.draining;
  }
}

/** Inference refused because the server is warming up or shutting down (503; warm-up runs the sessions directly). */
export class NotReadyError extends Error {
  constructor(readonly draining: boolean) {
    super(draining ? 'the server is shutting down' : 'the server is warming up');
    this.name = 'NotReadyError';
  }
}
