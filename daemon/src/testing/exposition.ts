/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests that read
 * ferryd's /metrics: every line must be a HELP, a TYPE, a comment, blank, or a sample; a sample
 * belongs to the family declared before it (histograms and summaries add _bucket, _sum, _count);
 * label values are unescaped; the same series may not appear twice. Anything else throws, naming
 * the line.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<string>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | null = null;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  else if (text.length > 0) throw new Error('exposition does not end with a newline');
  lines.forEach((line, i) => {
    const where = `line ${i + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, f);
      } else if (f !== current) throw new Error(`${where}: family ${name} declared twice`);
      current = f;
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE after samples`);
        f.type = rest as MetricType;
      } else f.help = unescapeHelp(rest);
      return;
    }
    const s = parseSample(line, where);
    const fam = current as Family | null;
    if (!fam || !belongs(fam, s.name)) throw new Error(`${where}: sample outside its family`);
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new Error(`${where}: series repeated`);
    seen.add(key);
    fam.samples.push(s);
  });
  return families;
}

function belongs(f: Family, sample: string): boolean {
  if (sample === f.name) return f.type !== 'histogram';
  if (f.type === 'histogram')
    return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`].includes(sample);
  if (f.type === 'summary') return [`${f.name}_sum`, `${f.name}_count`].includes(sample);
  return false;
}

function parseSample(line: string, where: string): Sample {
  let i = 0;
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i] ?? '')) i++;
  const name = line.slice(0, i);
  if (!NAME.test(name)) throw new Error(`${where}: bad sample name`);
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const eq = line.indexOf('=', i);
      if (eq < 0) throw new Error(`${where}: label without '='`);
      const label = line.slice(i, eq);
      if (!LABEL.test(label)) throw new Error(`${where}: bad label name ${JSON.stringify(label)}`);
      if (label in labels) throw new Error(`${where}: label ${label} twice`);
      if (line[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
      let j = eq + 2;
      let value = '';
      for (;;) {
        const c = line[j];
        if (c === undefined) throw new Error(`${where}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[j + 1];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`${where}: bad escape in label value`);
          j += 2;
          continue;
        }
        value += c;
        j++;
      }
      labels[label] = value;
      i = j + 1;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${where}: expected ',' or '}' after a label`);
    }
    i++;
  }
  if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
  const parts = line.slice(i + 1).split(' ');
  if (parts.length > 2) throw new Error(`${where}: trailing fields`);
  const value = parseValue(parts[0] ?? '', where);
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1] ?? '')) throw new Error(`${where}: bad timestamp`);
  return { name, labels, value };
}

/** Numbers as Prometheus reads them (Go's ParseFloat: Inf and NaN in any case, so prom-client's 'Nan'). */
function parseValue(text: string, where: string): number {
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value`);
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** The value of the one sample of `name` whose labels include `labels`; throws when not exactly one. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const fam =
    families.get(name) ??
    families.get(name.replace(/_(bucket|sum|count)$/, '')) ??
    (() => {
      throw new Error(`no family for ${name}`);
    })();
  const hits = fam.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length !== 1) throw new Error(`${hits.length} samples of ${name} ${JSON.stringify(labels)}`);
  return (hits[0] as Sample).value;
}
