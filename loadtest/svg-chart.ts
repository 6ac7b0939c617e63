/**
 * A small SVG writer for the latency-throughput chart: x = throughput (req/s, linear), y = latency (ms, log scale),
 * per model a solid line through its p50 points and a dashed line through its p99 points, one point per load level.
 * No chart library: a person opens the file in a browser; tests read it as XML.
 */

export interface ChartPoint {
  /** Short level label drawn beside the point, e.g. "c4" or "r10". */
  label: string;
  throughput: number;
  p50: number;
  p99: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  width?: number;
  height?: number;
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[ch]};`);
}

type Attrs = Record<string, string | number | undefined>;

/** `<name a="1">children</name>`, or self-closing without children; attribute values escaped. */
export function element(name: string, attrs: Attrs, children: string[] = []): string {
  const attributes = Object.entries(attrs)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}="${escapeXml(typeof value === 'number' ? fmt(value) : String(value))}"`)
    .join('');
  return children.length ? `<${name}${attributes}>${children.join('')}</${name}>` : `<${name}${attributes}/>`;
}

const fmt = (value: number) => String(Math.round(value * 100) / 100);
const text = (attrs: Attrs, content: string) => element('text', attrs, [escapeXml(content)]);

/** 1, 2, 5 x 10^k ticks covering [low, high]. */
export function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let exp = Math.floor(Math.log10(low)); exp <= Math.ceil(Math.log10(high)); exp++) {
    for (const mantissa of [1, 2, 5]) {
      const tick = mantissa * 10 ** exp;
      if (tick >= low && tick <= high) ticks.push(tick);
    }
  }
  return ticks;
}

/** About `count` round ticks from 0 to the first one at or above `high` (steps of 1, 2 or 5 x 10^k). */
export function linearTicks(high: number, count = 6): number[] {
  const raw = high / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks = [0];
  while (ticks[ticks.length - 1] < high) ticks.push(Math.round(ticks.length * step * 1e6) / 1e6);
  return ticks;
}

export function latencyThroughputSvg(series: ChartSeries[], options: ChartOptions): string {
  const width = options.width ?? 860;
  const height = options.height ?? 520;
  const margin = { left: 78, right: 200, top: 64, bottom: 58 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = series.flatMap((s) => s.points);
  const latencies = all.flatMap((p) => [p.p50, p.p99]).filter((v) => v > 0);
  const steps = logTicks(1e-3, 1e7);
  const yLow = latencies.length ? ([...steps].reverse().find((t) => t <= Math.min(...latencies) * 0.9) ?? 1e-3) : 1;
  const yHigh = latencies.length ? (steps.find((t) => t >= Math.max(...latencies) * 1.1) ?? 1e7) : 1000;
  const xTicks = linearTicks(Math.max(1e-3, ...all.map((p) => p.throughput)) * 1.08);
  const xHigh = xTicks[xTicks.length - 1];
  const x = (v: number) => margin.left + (v / xHigh) * plotW;
  const y = (v: number) =>
    margin.top + plotH - ((Math.log10(Math.max(v, yLow)) - Math.log10(yLow)) / Math.log10(yHigh / yLow)) * plotH;

  const parts: string[] = [
    element('rect', { x: 0, y: 0, width, height, fill: 'white' }),
    text({ x: margin.left, y: 26, 'font-size': 17, 'font-weight': 'bold' }, options.title),
  ];
  if (options.subtitle) parts.push(text({ x: margin.left, y: 46, 'font-size': 12, fill: '#555' }, options.subtitle));
  for (const tick of logTicks(yLow, yHigh)) {
    parts.push(
      element('line', { x1: margin.left, x2: margin.left + plotW, y1: y(tick), y2: y(tick), stroke: '#e5e5e5' }),
    );
    parts.push(text({ x: margin.left - 8, y: y(tick) + 4, 'font-size': 11, 'text-anchor': 'end' }, String(tick)));
  }
  for (const tick of xTicks) {
    parts.push(
      element('line', { x1: x(tick), x2: x(tick), y1: margin.top, y2: margin.top + plotH, stroke: '#eeeeee' }),
    );
    parts.push(
      text({ x: x(tick), y: margin.top + plotH + 18, 'font-size': 11, 'text-anchor': 'middle' }, String(tick)),
    );
  }
  parts.push(
    element('rect', { x: margin.left, y: margin.top, width: plotW, height: plotH, fill: 'none', stroke: '#333' }),
    text(
      { x: margin.left + plotW / 2, y: height - 14, 'font-size': 13, 'text-anchor': 'middle' },
      'throughput (successful requests per second)',
    ),
    text(
      {
        x: 18,
        y: margin.top + plotH / 2,
        'font-size': 13,
        'text-anchor': 'middle',
        transform: `rotate(-90 18 ${fmt(margin.top + plotH / 2)})`,
      },
      'latency (ms, log scale)',
    ),
  );

  series.forEach((s, index) => {
    const color = palette[index % palette.length];
    const path = (key: 'p50' | 'p99') => s.points.map((p) => `${fmt(x(p.throughput))},${fmt(y(p[key]))}`).join(' ');
    const group: string[] = [];
    if (s.points.length > 1) {
      group.push(element('polyline', { points: path('p50'), fill: 'none', stroke: color, 'stroke-width': 2.5 }));
      group.push(
        element('polyline', {
          points: path('p99'),
          fill: 'none',
          stroke: color,
          'stroke-width': 1.8,
          'stroke-dasharray': '6 4',
        }),
      );
    }
    for (const p of s.points) {
      group.push(element('circle', { cx: x(p.throughput), cy: y(p.p50), r: 4.5, fill: color }));
      group.push(element('circle', { cx: x(p.throughput), cy: y(p.p99), r: 4, fill: 'white', stroke: color }));
      group.push(text({ x: x(p.throughput) + 7, y: y(p.p50) - 6, 'font-size': 10, fill: color }, p.label));
    }
    parts.push(element('g', { 'data-series': s.name }, group));
    const ly = margin.top + 10 + index * 40;
    const lx = margin.left + plotW + 16;
    parts.push(
      element('line', { x1: lx, x2: lx + 26, y1: ly, y2: ly, stroke: color, 'stroke-width': 2.5 }),
      text({ x: lx + 32, y: ly + 4, 'font-size': 12 }, `${s.name} p50`),
      element('line', {
        x1: lx,
        x2: lx + 26,
        y1: ly + 17,
        y2: ly + 17,
        stroke: color,
        'stroke-width': 1.8,
        'stroke-dasharray': '6 4',
      }),
      text({ x: lx + 32, y: ly + 21, 'font-size': 12 }, `${s.name} p99`),
    );
  });
  const noteY = margin.top + 10 + series.length * 40 + 8;
  parts.push(
    text({ x: margin.left + plotW + 16, y: noteY, 'font-size': 10, fill: '#555' }, 'labels: c = connections,'),
    text({ x: margin.left + plotW + 16, y: noteY + 13, 'font-size': 10, fill: '#555' }, 'r = fixed rate (req/s)'),
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element(
    'svg',
    {
      xmlns: 'http://www.w3.org/2000/svg',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      'font-family': 'sans-serif',
    },
    parts,
  )}\n`;
}
