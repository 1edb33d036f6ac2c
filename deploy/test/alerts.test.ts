// deploy/prometheus/alerts.yaml, checked and unit-tested by Prometheus's own promtool
// (Debian's prometheus package): every alert fires on the series meant to raise it.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { DEPLOY_DIR } from './manifests';

const run = promisify(execFile);
const RULES_DIR = path.join(DEPLOY_DIR, 'prometheus');

describe('deploy/prometheus/alerts.yaml', () => {
  it('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', 'alerts.yaml'], { cwd: RULES_DIR });
    expect(stdout).toContain('SUCCESS: 7 rules found');
  });

  it("passes promtool's unit tests, one per alert", async () => {
    const { stdout } = await run('promtool', ['test', 'rules', 'alerts.test.yaml'], {
      cwd: RULES_DIR,
    });
    expect(stdout).toContain('SUCCESS');
  });

  it('fails when an alert does not fire as a test expects (the check can fail)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'seed-alerts-'));
    try {
      await copyFile(path.join(RULES_DIR, 'alerts.yaml'), path.join(dir, 'alerts.yaml'));
      // The queue alert expected after 5 minutes of waiting: 15 are needed.
      await writeFile(
        path.join(dir, 'early.test.yaml'),
        [
          'rule_files: [alerts.yaml]',
          'tests:',
          '  - interval: 1m',
          '    input_series:',
          '      - series: seed_webhook_queue_oldest_waiting_seconds{job="webhook"}',
          '        values: "0+60x10"',
          '    alert_rule_test:',
          '      - eval_time: 5m',
          '        alertname: SeedBuildQueueStuck',
          '        exp_alerts: [{ exp_labels: { severity: critical } }]',
        ].join('\n'),
      );
      const failure = await run('promtool', ['test', 'rules', 'early.test.yaml'], {
        cwd: dir,
      }).then(
        () => undefined,
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      expect(failure?.code).toBe(1);
      expect(`${failure?.stdout}${failure?.stderr}`).toContain('FAILED');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
