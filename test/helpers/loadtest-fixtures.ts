/** Fixtures of test/loadtest.test.ts: `sbs loadtest` as a child process, and two scrapes of a server's /metrics. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cliPath } from './cli-process.js';

const repo = join(import.meta.dirname, '..', '..');

/** Runs `sbs loadtest <args>` as a user would. */
export function runLoadtest(
  args: string[],
  onOutput: (text: string) => void = () => {},
): Promise<{ code: number | null; output: string }> {
  const entry = [cliPath, 'loadtest'];
  const child = spawn(process.execPath, ['--import', 'tsx', ...entry, ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk;
    onOutput(output);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, output });
    }),
  );
}

export const errorLines = (output: string) => output.split('\n').filter((line) => line.startsWith('error: '));

/** Two scrapes of one server, before and after some traffic. */
export const scrape1 = `# HELP sbs_batch_size Rows per formed batch
# TYPE sbs_batch_size histogram
sbs_batch_size_bucket{le="1",model="m-int8"} 2
sbs_batch_size_bucket{le="2",model="m-int8"} 4
sbs_batch_size_bucket{le="4",model="m-int8"} 4
sbs_batch_size_bucket{le="+Inf",model="m-int8"} 4
sbs_batch_size_sum{model="m-int8"} 6
sbs_batch_size_count{model="m-int8"} 4
sbs_batch_size_bucket{le="1",model="m-fp32"} 7
sbs_batch_size_bucket{le="+Inf",model="m-fp32"} 7
sbs_batch_size_sum{model="m-fp32"} 7
sbs_batch_size_count{model="m-fp32"} 7
sbs_http_requests_total{route="/models/:model/qa",model="m-int8",status="200"} 10 1700000000000
sbs_rejections_total{model="m-int8",reason="queue_full"} 1
weird_total{path="a \\"quoted\\", comma} and \\\\ backslash\\nnewline"} 3.5e1
sbs_nodejs_eventloop_lag_seconds Nan
sbs_process_cpu_seconds_total 12.5
`;
export const scrape2 = scrape1
  .replace('le="1",model="m-int8"} 2', 'le="1",model="m-int8"} 12')
  .replace('le="2",model="m-int8"} 4', 'le="2",model="m-int8"} 104')
  .replace('le="4",model="m-int8"} 4', 'le="4",model="m-int8"} 203')
  .replace('le="+Inf",model="m-int8"} 4', 'le="+Inf",model="m-int8"} 204')
  .replace('sbs_batch_size_sum{model="m-int8"} 6', 'sbs_batch_size_sum{model="m-int8"} 606')
  .replace('sbs_batch_size_count{model="m-int8"} 4', 'sbs_batch_size_count{model="m-int8"} 204')
  .replace('status="200"} 10 1700000000000', 'status="200"} 60')
  .replace('reason="queue_full"} 1', 'reason="queue_full"} 1\nsbs_rejections_total{model="m-int8",reason="deadline"} 2')
  .replace('cpu_seconds_total 12.5', 'cpu_seconds_total 20');
