/** CPU time and memory of a local process from /proc (Linux), for the server the load test started itself. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcSample {
  /** user + system CPU seconds of all the process's threads so far. */
  cpuSeconds: number;
  rssMb: number;
  /** Peak resident set size of the process so far (VmHWM). */
  peakRssMb: number;
  at: number;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime and stime are fields 14 and 15 of /proc/<pid>/stat; the command name (field 2) may contain spaces. */
export function parseProcStat(text: string): { utimeTicks: number; stimeTicks: number } {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  return { utimeTicks: Number(fields[11]), stimeTicks: Number(fields[12]) };
}

function statusKb(status: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return match ? Number(match[1]) : NaN;
}

/** CPU seconds the whole machine spent busy so far (all cores: /proc/stat minus idle and iowait), or undefined. */
export function machineBusySeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields; // idle and iowait left out
    return (user + nice + system + irq + softirq + steal) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** undefined when the process is gone or /proc is not there. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const { utimeTicks, stimeTicks } = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpuSeconds: (utimeTicks + stimeTicks) / ticksPerSecond(),
      rssMb: statusKb(status, 'VmRSS') / 1024,
      peakRssMb: statusKb(status, 'VmHWM') / 1024,
      at: performance.now(),
    };
  } catch {
    return undefined;
  }
}
