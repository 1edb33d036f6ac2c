// The Grafana dashboard (deploy/grafana/seed.json) asked of the Prometheus that scraped
// this run: every panel query must return data from the services. A panel whose query
// finds nothing, or only NaN (a quantile of a histogram nobody observed), is named; a
// constant query would always "answer", so it is refused too.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PromSample } from '@seed/local-parts';

const DEPLOY_DIR = path.resolve(__dirname, '../../../deploy');
export const DASHBOARD_PATH = path.join(DEPLOY_DIR, 'grafana/seed.json');
export const ALERT_RULES_PATH = path.join(DEPLOY_DIR, 'prometheus/alerts.yaml');

export interface PanelQuery {
  panel: string;
  expr: string;
}

export interface PanelAnswer extends PanelQuery {
  /** Series with a finite value. */
  series: number;
  /** Why the panel would show no data; undefined when it has some. */
  problem?: string;
}

interface Panel {
  type: string;
  title: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Every query of every panel (rows' nested panels included), in the dashboard's order. */
export async function dashboardQueries(file = DASHBOARD_PATH): Promise<PanelQuery[]> {
  const dashboard = JSON.parse(await readFile(file, 'utf8')) as { panels: Panel[] };
  return dashboard.panels
    .flatMap((panel) => [panel, ...(panel.panels ?? [])])
    .flatMap((panel) =>
      (panel.targets ?? []).flatMap(({ expr }) => (expr ? [{ panel: panel.title, expr }] : [])),
    );
}

/**
 * Asks each query with Grafana's interval variables set to `window` (how long Prometheus
 * has scraped), so a rate covers the whole run.
 */
export async function askDashboard(
  query: (expr: string) => Promise<PromSample[]>,
  queries: readonly PanelQuery[],
  window: string,
): Promise<PanelAnswer[]> {
  const answers: PanelAnswer[] = [];
  for (const panelQuery of queries) {
    if (!/seed_[a-z_]+/.test(panelQuery.expr) || /\bvector\s*\(/.test(panelQuery.expr)) {
      answers.push({
        ...panelQuery,
        series: 0,
        problem: 'a constant query, not the services’ data',
      });
      continue;
    }
    const expr = panelQuery.expr.replace(/\$(?:__rate_interval|__interval|__range)\b/g, window);
    const samples = await query(expr).catch((error: Error) => error);
    if (samples instanceof Error) {
      answers.push({ ...panelQuery, series: 0, problem: samples.message });
      continue;
    }
    const series = samples.filter((sample) => Number.isFinite(sample.value)).length;
    answers.push({
      ...panelQuery,
      series,
      ...(series === 0 && {
        problem: samples.length === 0 ? 'no data' : 'only NaN: nothing was observed',
      }),
    });
  }
  return answers;
}
