// What each forge's API takes for a commit status, to check every request the builder
// sends to the loopback forges of the tests.
//
// - GitHub: its published OpenAPI description (npm `@octokit/openapi`, the
//   api.github.com document), operation `repos/create-commit-status`: the path template,
//   the method and the request body schema are read from it, as @seed/testing checks the
//   Cloud Hypervisor client against that project's document.
// - Gitea/Forgejo and GitLab publish no document we can install here: their schemas
//   below are written by this project from their API documentation (Gitea's Swagger
//   `repoCreateStatus` / `CreateStatusOption`, which Forgejo keeps; GitLab's "Commits API:
//   Set the pipeline status of a commit"), so they are only as right as that reading.
//
// Every object schema is closed here (no properties beyond the documented ones), so a
// misspelt field (`targetUrl`) fails instead of being ignored by the forge.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

export interface SentRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

type JsonSchema = Record<string, unknown>;

interface GithubOperation {
  operationId: string;
  requestBody: { content: { 'application/json': { schema: JsonSchema } } };
}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);

function close(schema: JsonSchema): JsonSchema {
  return schema.type === 'object' ? { ...schema, additionalProperties: false } : schema;
}

let github: { template: string; validate: ValidateFunction; version: string } | undefined;

/** The GitHub document's commit status operation (read once: the file is 13 MB). */
function githubOperation() {
  if (github === undefined) {
    const file = path.join(
      path.dirname(require.resolve('@octokit/openapi/package.json')),
      'generated/api.github.com.json',
    );
    const spec = JSON.parse(readFileSync(file, 'utf8')) as {
      info: { version: string };
      paths: Record<string, Record<string, GithubOperation>>;
    };
    const template = '/repos/{owner}/{repo}/statuses/{sha}';
    const operation = spec.paths[template]?.post;
    if (operation?.operationId !== 'repos/create-commit-status')
      throw new Error('the GitHub document has no repos/create-commit-status at POST ' + template);
    github = {
      template,
      validate: ajv.compile(close(operation.requestBody.content['application/json'].schema)),
      version: spec.info.version,
    };
  }
  return github;
}

/** Gitea's `CreateStatusOption` (Swagger, /api/v1), which Forgejo keeps: written from its docs. */
const GITEA_STATUS: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: ['pending', 'success', 'error', 'failure', 'warning'] },
    target_url: { type: 'string' },
    description: { type: 'string' },
    context: { type: 'string' },
  },
  required: ['state'],
};

/** GitLab's commit status attributes (POST /projects/:id/statuses/:sha): written from its docs. */
const GITLAB_STATUS: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: {
      type: 'string',
      enum: ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'],
    },
    ref: { type: 'string' },
    name: { type: 'string' },
    context: { type: 'string' },
    target_url: { type: 'string' },
    description: { type: 'string', maxLength: 255 },
    coverage: { type: 'number' },
    pipeline_id: { type: 'integer' },
  },
  required: ['state'],
};

const FORGES = {
  github: {
    template: () => githubOperation().template,
    validate: () => githubOperation().validate,
    auth: (headers: SentRequest['headers']) => /^Bearer \S+$/.test(String(headers.authorization)),
  },
  gitea: {
    template: () => '/api/v1/repos/{owner}/{repo}/statuses/{sha}',
    validate: () => giteaValidate,
    auth: (headers: SentRequest['headers']) => /^token \S+$/.test(String(headers.authorization)),
  },
  gitlab: {
    template: () => '/api/v4/projects/{id}/statuses/{sha}',
    validate: () => gitlabValidate,
    auth: (headers: SentRequest['headers']) => typeof headers['private-token'] === 'string',
  },
};
const giteaValidate = ajv.compile(GITEA_STATUS);
const gitlabValidate = ajv.compile(GITLAB_STATUS);

/**
 * What is wrong with a request sent to set a commit status on `forge` (empty: nothing):
 * method, path against the operation's template, authentication header, JSON body.
 */
export function commitStatusProblems(
  forge: 'github' | 'gitea' | 'gitlab',
  request: SentRequest,
): string[] {
  const spec = FORGES[forge];
  const problems: string[] = [];
  if (request.method !== 'POST') problems.push(`method ${request.method}, expected POST`);
  const pattern = new RegExp(
    `^${spec
      .template()
      .replace(/\{sha\}/, '[0-9a-f]{40}')
      .replace(/\{[a-z]+\}/g, '[^/]+')}$`,
  );
  if (!pattern.test(request.path)) problems.push(`path ${request.path} is not ${spec.template()}`);
  if (!spec.auth(request.headers)) problems.push('no authentication header of this forge');
  if (!String(request.headers['content-type']).startsWith('application/json'))
    problems.push('not sent as JSON');
  const validate = spec.validate();
  if (!validate(request.body))
    problems.push(...(validate.errors ?? []).map((e) => `body${e.instancePath} ${e.message}`));
  return problems;
}

/** The GitHub document's version, for the test's name. */
export function githubSpecVersion(): string {
  return githubOperation().version;
}
