/** Readiness as /readyz and /v2/health/ready report it: true after warm-up, false again once draining starts. */
export class ServerState {
  warmedUp = false;
  draining = false;

  get ready(): boolean {
    return this.warmedUp && !this.draining;
  }
}

export class DrainingError extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'DrainingError';
  }
}
