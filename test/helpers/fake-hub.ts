import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---- a loopback server with the Hub's layout --------------------------------------------------------------------

export interface FakeRepo {
  files: Record<string, string | Uint8Array>;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Files served with a Content-Length larger than the body, after which the socket is closed. */
  truncated?: string[];
  /** Files served like LFS files: the resolve URL answers 302 to a "CDN" path. */
  redirected?: string[];
}

interface LoggedRequest {
  path: string;
  authorization?: string;
}

export interface FakeHub {
  endpoint: string;
  requests: LoggedRequest[];
  /** Paths of the file bodies served (resolve without redirect, or CDN). */
  downloads(): string[];
  close(): Promise<void>;
}

export async function startHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const requests: LoggedRequest[] = [];
  const served: string[] = [];

  function sendFile(res: ServerResponse, repo: FakeRepo, file: string): void {
    const body = Buffer.from(repo.files[file]);
    served.push(file);
    if (repo.truncated?.includes(file)) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length + 1000 });
      res.write(body.subarray(0, Math.ceil(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    requests.push({ path, authorization: req.headers.authorization });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const authorized = (repo: FakeRepo) => {
      if (!repo.token || req.headers.authorization === `Bearer ${repo.token}`) return true;
      json(401, { error: 'Invalid credentials in Authorization header' });
      return false;
    };

    let m = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(path);
    if (m) {
      const repo = repos[m[1]];
      if (!repo) return json(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      if (!authorized(repo)) return;
      if (m[2] !== 'main') return json(404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
      const siblings = Object.entries(repo.files).map(([rfilename, text]) => ({
        rfilename,
        size: Buffer.byteLength(text),
      }));
      return json(200, { id: m[1], sha: 'abc123', siblings });
    }
    m = /^\/(.+)\/resolve\/main\/(.+)$/.exec(path);
    if (m) {
      const repo = repos[m[1]];
      if (!repo) return json(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      if (!authorized(repo)) return;
      const file = m[2];
      if (!(file in repo.files)) return json(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      if (repo.redirected?.includes(file)) {
        const { port } = server.address() as AddressInfo;
        res.writeHead(302, { Location: `http://127.0.0.1:${port}/cdn/${m[1]}/${file}?signature=xyz` });
        res.end();
        return;
      }
      return sendFile(res, repo, file);
    }
    m = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(path);
    if (m && repos[m[1]] && m[2] in repos[m[1]].files) return sendFile(res, repos[m[1]], m[2]);
    json(404, { error: 'not found' });
  }

  const server = createServer(handle);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    downloads: () => [...served],
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
