import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { parseServerConfig, serveUsage } from '../src/config.js';
import { metricPrefix } from '../src/metrics.js';
import { prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

/*
 * The Kubernetes manifests (deploy/kubernetes) against the server they deploy: env vars through the server's own
 * config parser, probe paths and metric names against a real (in-process) server, ports against the Dockerfile.
 */

const repoRoot = join(import.meta.dirname, '..');
const deployDir = join(repoRoot, 'deploy', 'kubernetes');
type Manifest = Record<string, any>;

const files = readdirSync(deployDir).filter((name) => name.endsWith('.yaml'));
const manifests: Array<{ file: string; doc: Manifest }> = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((document) => {
    assert.deepEqual(document.errors, [], `${file}: ${document.errors.join('; ')}`);
    return { file, doc: document.toJS() as Manifest };
  }),
);
const only = (kind: string): Manifest => {
  const found = manifests.filter(({ doc }) => doc.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} in deploy/kubernetes`);
  return found[0].doc;
};

const deployment = only('Deployment');
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
const env: Record<string, string> = Object.fromEntries(
  container.env.map((e: { name: string; value: string }) => [e.name, e.value]),
);
const httpPort = container.ports.find((p: { name: string }) => p.name === 'http');
const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');

const root = workspace('deploy');
let server: TestServer;
/** Metric families the server exports (`# TYPE <name> <type>` lines of /metrics) after one /qa request. */
let exported: Map<string, string>;
let metricsText: string;

let modelsDir: string;

before(async () => {
  modelsDir = await prepareModels(root);
  server = await startTestServer(modelsDir);
  const qa = await server.app.inject({
    method: 'POST',
    url: '/qa',
    payload: { question: 'Where?', context: 'The museum is in Zurich.' },
  });
  assert.equal(qa.statusCode, 200);
  metricsText = (await server.app.inject({ url: '/metrics' })).body;
  exported = new Map([...metricsText.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
});
after(() => server?.close());

/** A probe's or annotation's port, by name or number, resolved to the container's port number. */
function portNumber(port: string | number): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = container.ports.find((p: { name: string }) => p.name === port);
  assert.ok(named, `port "${port}" is not a named container port`);
  return named.containerPort;
}

test('every manifest parses, is named, and the kustomization lists them all', () => {
  assert.ok(manifests.length >= 5);
  const kustomization = only('Kustomization');
  for (const { file, doc } of manifests) {
    assert.ok(doc.apiVersion && doc.kind, `${file}: apiVersion and kind`);
    if (doc.kind !== 'Kustomization') {
      assert.ok(doc.metadata?.name, `${file}: metadata.name`);
      assert.ok(kustomization.resources.includes(file), `kustomization.yaml lists ${file}`);
    }
  }
});

test('the Deployment env is a valid server configuration whose port, host and models folder match the pod', () => {
  // Every variable is one the server reads (serve --help names them in brackets).
  for (const name of Object.keys(env))
    assert.match(serveUsage, new RegExp(`\\[${name}[=\\]]`), `${name} is not a server setting`);
  const config = parseServerConfig([], envWithKeyFile());
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.port, httpPort.containerPort);
  const modelsMount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === config.modelsDir);
  assert.ok(modelsMount, `a volume is mounted at MODELS_DIR (${config.modelsDir})`);
  assert.equal(modelsMount.readOnly, true);
  assert.deepEqual(config.precisions, ['int8']);

  // The same defaults the image sets, the port it exposes, the user it runs as.
  assert.match(dockerfile, new RegExp(`^EXPOSE ${httpPort.containerPort}$`, 'm'));
  for (const name of ['HOST', 'PORT', 'MODELS_DIR'])
    assert.match(dockerfile, new RegExp(`\\b${name}=${env[name]}\\b`), `Dockerfile ENV ${name}=${env[name]}`);
  assert.match(
    dockerfile,
    new RegExp(`^USER ${podSpec.securityContext.runAsUser}:${podSpec.securityContext.runAsGroup}$`, 'm'),
  );
  assert.equal(podSpec.securityContext.runAsNonRoot, true);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);

  // Resources sized per thread: one CPU per intra-op thread of each session.
  assert.equal(Number(container.resources.requests.cpu), config.runtime.threads * config.runtime.sessionsPerModel);
  assert.equal(config.runtime.threads, 2);
  assert.ok(container.resources.requests.memory && container.resources.limits.memory);

  // SIGTERM: the preStop pause plus the drain deadline fit in the grace period, so the kubelet never SIGKILLs a drain.
  const preStopSeconds = Number(container.lifecycle.preStop.exec.command[1]);
  assert.ok(podSpec.terminationGracePeriodSeconds * 1000 > preStopSeconds * 1000 + config.shutdownTimeoutMs);
});

/** The Deployment env with API_KEY_FILE pointing at a local stand-in for the mounted Secret. */
function envWithKeyFile(): Record<string, string> {
  const file = join(root, 'api-keys');
  writeFileSync(file, 'deploy-test-key\n');
  return { ...env, API_KEY_FILE: file };
}

test('API keys come from a Secret mounted read-only at API_KEY_FILE; probes and the Prometheus scrape stay open', async () => {
  const keyFile = env.API_KEY_FILE;
  assert.ok(keyFile, 'the Deployment sets API_KEY_FILE');
  assert.ok(!('API_KEY' in env), 'no key in the manifest itself');
  const mount = container.volumeMounts.find((m: { mountPath: string }) => keyFile.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `a volume is mounted above ${keyFile}`);
  assert.equal(mount.readOnly, true);
  const volume = podSpec.volumes.find((v: { name: string }) => v.name === mount.name);
  assert.ok(volume.secret, `${mount.name} is a Secret volume`);
  const item = volume.secret.items.find((i: { path: string }) => `${mount.mountPath}/${i.path}` === keyFile);
  assert.ok(item, `the Secret's item lands at ${keyFile}`);
  // The pod does not start without the Secret (not optional): never exposed without a key.
  assert.notEqual(volume.secret.optional, true);
  // The Secret is created by hand (no key in the repository); the manifest says how, with the same names.
  const text = readFileSync(join(deployDir, 'deployment.yaml'), 'utf8');
  assert.match(
    text,
    new RegExp(`kubectl create secret generic ${volume.secret.secretName} --from-literal=${item.key}=`),
  );
  assert.ok(!manifests.some(({ doc }) => doc.kind === 'Secret'));

  const config = parseServerConfig([], envWithKeyFile());
  assert.deepEqual(config.auth, { apiKeys: ['deploy-test-key'], metricsAuth: false });
  const secured = await startTestServer(modelsDir, (c) => (c.auth = config.auth));
  try {
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe])
      assert.equal((await secured.app.inject({ url: probe.httpGet.path })).statusCode, 200, probe.httpGet.path);
    const scrape = deployment.spec.template.metadata.annotations['prometheus.io/path'];
    assert.equal((await secured.app.inject({ url: scrape })).statusCode, 200);
    const qa = { method: 'POST' as const, url: '/qa', payload: { question: 'Where?', context: 'In Zurich.' } };
    assert.equal((await secured.app.inject(qa)).statusCode, 401);
    const answered = await secured.app.inject({ ...qa, headers: { authorization: 'Bearer deploy-test-key' } });
    assert.equal(answered.statusCode, 200);
  } finally {
    await secured.close();
  }
});

test('probes use the server routes: readiness /readyz (503 while warming up or draining), liveness and startup /healthz', async () => {
  const { readinessProbe, livenessProbe, startupProbe } = container;
  assert.equal(readinessProbe.httpGet.path, '/readyz');
  assert.equal(livenessProbe.httpGet.path, '/healthz');
  assert.equal(startupProbe.httpGet.path, '/healthz');
  for (const probe of [readinessProbe, livenessProbe, startupProbe]) {
    assert.equal(portNumber(probe.httpGet.port), httpPort.containerPort);
    assert.equal((await server.app.inject({ url: probe.httpGet.path })).statusCode, 200, probe.httpGet.path);
  }
  server.state.draining = true;
  try {
    assert.equal((await server.app.inject({ url: readinessProbe.httpGet.path })).statusCode, 503);
    assert.equal((await server.app.inject({ url: livenessProbe.httpGet.path })).statusCode, 200);
  } finally {
    server.state.draining = false;
  }
  // The image's HEALTHCHECK asks the same readiness route.
  assert.match(dockerfile.match(/^HEALTHCHECK[\s\S]*?\]$/m)?.[0] ?? '', new RegExp(readinessProbe.httpGet.path));
});

test('Prometheus scrape annotations name the container port and the /metrics route', async () => {
  const annotations = deployment.spec.template.metadata.annotations;
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(portNumber(annotations['prometheus.io/port']), httpPort.containerPort);
  const response = await server.app.inject({ url: annotations['prometheus.io/path'] });
  assert.equal(response.statusCode, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain/);
});

test('the Service selects the Deployment pods and targets the container port', () => {
  const service = only('Service');
  const podLabels = deployment.spec.template.metadata.labels;
  for (const [key, value] of Object.entries(service.spec.selector))
    assert.equal(podLabels[key], value, `selector ${key}`);
  assert.deepEqual(deployment.spec.selector.matchLabels, service.spec.selector);
  assert.equal(portNumber(service.spec.ports[0].targetPort), httpPort.containerPort);
});

test('the HPA (autoscaling/v2, Pods metric) scales the Deployment on the queue depth the server exports, via the adapter rule', () => {
  const hpa = only('HorizontalPodAutoscaler');
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(hpa.spec.scaleTargetRef, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: deployment.metadata.name,
  });
  assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
  assert.equal(hpa.spec.metrics.length, 1);
  const [metric] = hpa.spec.metrics;
  assert.equal(metric.type, 'Pods');
  assert.equal(metric.pods.metric.name, `${metricPrefix}queue_depth`);
  assert.equal(metric.pods.target.type, 'AverageValue');
  assert.ok(Number(metric.pods.target.averageValue) > 0);

  // The server exports it as a gauge per model (seen on a live server after a request).
  assert.equal(exported.get(`${metricPrefix}queue_depth`), 'gauge');
  assert.match(metricsText, new RegExp(`^${metricPrefix}queue_depth\\{model="qa-int8"\\} 0$`, 'm'));

  // The adapter turns that series into the custom metric the HPA asks for, per pod.
  const adapterConfig = parse(only('ConfigMap').data['config.yaml']) as { rules: Manifest[] };
  const rule = adapterConfig.rules.find((r) => r.name.as === metric.pods.metric.name);
  assert.ok(rule, `an adapter rule exposes ${metric.pods.metric.name}`);
  const series = /^(\w+)\{/.exec(rule.seriesQuery)?.[1];
  assert.ok(series && exported.has(series), `the adapter's series ${series} is exported by the server`);
  assert.match(series, new RegExp(rule.name.matches));
  assert.deepEqual(rule.resources.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
  assert.match(rule.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);
  assert.match(rule.metricsQuery, /by \(<<\.GroupBy>>\)/);
});

test('every sbs_ metric the deploy files mention is one the server exports', () => {
  const text = files.map((file) => readFileSync(join(deployDir, file), 'utf8')).join('\n');
  const mentioned = new Set(text.match(new RegExp(`\\b${metricPrefix}[a-z_]+`, 'g')));
  assert.ok(mentioned.size > 0);
  for (const name of mentioned) {
    const family = name.replace(/_(count|sum|bucket)$/, '');
    assert.ok(exported.has(name) || exported.has(family), `${name} is not exported by the server`);
  }
});
