// A real Prometheus (Debian's) scraping local services, for `seed up --keep` and the tests
// that evaluate the Grafana dashboard's and the alert rules' queries against what the
// services really export.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { httpGetOnce } from './http-get';
import { ManagedProcess, waitFor } from './managed-process';
import { freeLoopbackPort } from './ports';

export interface ScrapeTarget {
  /** The `job` label of the target's series. */
  job: string;
  /** Its metrics URL, e.g. `http://127.0.0.1:8080/metrics`. */
  url: string;
}

export interface PrometheusOptions {
  targets: readonly ScrapeTarget[];
  /** Default 1 s: a short run still gets enough samples for `rate()`. */
  scrapeIntervalSeconds?: number;
  /** Alerting rule files it loads and evaluates every scrape interval. */
  ruleFiles?: readonly string[];
  startTimeoutMs?: number;
}

/** One sample of an instant query's answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface LocalPrometheus {
  /** `http://127.0.0.1:PORT`, its UI and HTTP API. */
  url: string;
  /** Its temp folder: configuration, data and `prometheus.log`; removed on stop. */
  dir: string;
  /** Evaluates `expr` now (an instant query); rejects with Prometheus's error. */
  query(expr: string): Promise<PromSample[]>;
  /** The state of each target's last scrape, by job: `up`, or `down` and why. */
  targetHealth(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<LocalPrometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'seed-prometheus-'));
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  // JSON is YAML: no YAML writer needed.
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.targets.map(({ job, url: target }) => {
      const parsed = new URL(target);
      return {
        job_name: job,
        scheme: parsed.protocol.replace(':', ''),
        metrics_path: parsed.pathname,
        static_configs: [{ targets: [parsed.host] }],
      };
    }),
  };
  const configPath = path.join(dir, 'prometheus.yml');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const prometheus = ManagedProcess.spawn(
    'prometheus',
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Debian's package serves its UI from /usr/share; the API needs nothing else.
      '--web.console.templates=/etc/prometheus/consoles',
      '--web.console.libraries=/etc/prometheus/console_libraries',
    ],
    dir,
    'prometheus',
  );
  try {
    await waitFor(
      'prometheus',
      prometheus,
      Date.now() + (options.startTimeoutMs ?? 30_000),
      async () => (await httpGetOnce(`${url}/-/ready`, { timeoutMs: 2_000 })).status === 200,
    );
  } catch (error) {
    await prometheus.stop(2_000);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const api = async <T>(apiPath: string): Promise<T> => {
    const answer = await httpGetOnce(`${url}${apiPath}`, { timeoutMs: 10_000 });
    const body = JSON.parse(answer.body) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${apiPath}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    dir,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: unknown }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      if (data.resultType === 'scalar') {
        return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
      }
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
        ({ metric, value }) => ({ metric, value: Number(value[1]) }),
      );
    },
    targetHealth: async () => {
      const data = await api<{
        activeTargets: { labels: { job: string }; health: string; lastError: string }[];
      }>('/api/v1/targets');
      return Object.fromEntries(
        data.activeTargets.map((t) => [
          t.labels.job,
          t.lastError ? `${t.health}: ${t.lastError}` : t.health,
        ]),
      );
    },
    stop: async () => {
      await prometheus.stop(5_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
