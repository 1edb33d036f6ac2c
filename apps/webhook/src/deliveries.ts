import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Forge } from '@seed/contracts';

/**
 * Forge deliveries, read without trusting them: which forge sent one, how it is signed,
 * and what it says, normalised to the few facts Seed acts on. Functions of their input
 * (with a bounded cache of normalised repository names): the service decides what to
 * do, deliveries.controller.ts does HTTP.
 */

/** Why a delivery is refused; the HTTP adapter maps each to a status. */
export type RejectionReason =
  | 'malformed' // 400
  | 'unauthorized' // 401
  | 'unsupported-media-type' // 415
  | 'over-limit'; // 429: the flake has its cap of builds waiting

export class DeliveryRejected extends Error {
  override readonly name = 'DeliveryRejected';

  constructor(
    readonly reason: RejectionReason,
    message: string,
  ) {
    super(message);
  }
}

/** Request headers with lower-case names, as Node delivers them. */
export type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Gitea and Forgejo also send GitHub's headers for compatibility, and Forgejo also
 * Gitea's: look for the most specific one first.
 */
export function detectForge(headers: Headers): Forge | undefined {
  if (header(headers, 'x-forgejo-event')) return 'forgejo';
  if (header(headers, 'x-gitea-event')) return 'gitea';
  if (header(headers, 'x-gitlab-event')) return 'gitlab';
  if (header(headers, 'x-github-event')) return 'github';
  return undefined;
}

const EVENT_HEADERS: Record<Forge, string> = {
  github: 'x-github-event',
  gitea: 'x-gitea-event',
  forgejo: 'x-forgejo-event',
  gitlab: 'x-gitlab-event',
};

export function eventName(forge: Forge, headers: Headers): string {
  return header(headers, EVENT_HEADERS[forge]) ?? '';
}

const DELIVERY_ID_HEADERS: Record<Forge, readonly string[]> = {
  github: ['x-github-delivery'],
  gitea: ['x-gitea-delivery'],
  forgejo: ['x-forgejo-delivery', 'x-gitea-delivery'],
  gitlab: ['idempotency-key', 'x-gitlab-event-uuid'],
};

/**
 * The forge's id of a delivery; a redelivery carries the same one. A sender that gives
 * none is identified by the hash of its body, which a resend repeats too.
 */
export function deliveryIdOf(forge: Forge, headers: Headers, body: Buffer): string {
  for (const name of DELIVERY_ID_HEADERS[forge]) {
    const value = header(headers, name)?.trim();
    if (value) {
      if (value.length > 200 || !/^[\x21-\x7e]+$/.test(value)) {
        throw new DeliveryRejected('malformed', `${name} is not a delivery id`);
      }
      return value;
    }
  }
  return `sha256-${createHash('sha256').update(body).digest('hex')}`;
}

/** How a delivery proves it comes from the forge that knows the flake's secret. */
export interface Signature {
  scheme: 'hmac-sha256' | 'token';
  /** The HMAC digest bytes, or the token's bytes. */
  value: Buffer;
}

/** Reads the signature header of a forge; undefined when the delivery is unsigned. */
export function signatureOf(forge: Forge, headers: Headers): Signature | undefined {
  if (forge === 'gitlab') {
    const token = header(headers, 'x-gitlab-token');
    return token ? { scheme: 'token', value: Buffer.from(token, 'utf8') } : undefined;
  }
  if (forge === 'github') {
    const signature = header(headers, 'x-hub-signature-256');
    if (!signature) return undefined;
    const hex = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim())?.[1];
    if (!hex)
      throw new DeliveryRejected(
        'unauthorized',
        'X-Hub-Signature-256 is not sha256=<64 hex digits>',
      );
    return { scheme: 'hmac-sha256', value: Buffer.from(hex, 'hex') };
  }
  const names =
    forge === 'forgejo' ? ['x-forgejo-signature', 'x-gitea-signature'] : ['x-gitea-signature'];
  for (const name of names) {
    const signature = header(headers, name)?.trim();
    if (!signature) continue;
    if (!/^[0-9a-fA-F]{64}$/.test(signature)) {
      throw new DeliveryRejected('unauthorized', `${name} is not 64 hex digits`);
    }
    return { scheme: 'hmac-sha256', value: Buffer.from(signature, 'hex') };
  }
  return undefined;
}

/** Constant-time check of a signature against one secret. */
export function signatureMatches(signature: Signature, body: Buffer, secret: string): boolean {
  const expected =
    signature.scheme === 'token'
      ? createHash('sha256').update(secret, 'utf8').digest()
      : createHmac('sha256', secret).update(body).digest();
  // Tokens are compared through their hashes so lengths never leak through timing.
  const given =
    signature.scheme === 'token'
      ? createHash('sha256').update(signature.value).digest()
      : signature.value;
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The JSON text of a JSON or form-encoded (`payload=<json>`) body. */
function bodyJson(contentType: string | undefined, body: Buffer): string {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return body.toString('utf8');
  if (mediaType === 'application/x-www-form-urlencoded') {
    const payload = new URLSearchParams(body.toString('utf8')).get('payload');
    if (payload === null) throw new DeliveryRejected('malformed', 'form body has no payload field');
    return payload;
  }
  throw new DeliveryRejected(
    'unsupported-media-type',
    `unsupported content type "${mediaType || '(none)'}": send application/json or application/x-www-form-urlencoded`,
  );
}

function parseJson(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw new DeliveryRejected('malformed', `body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Decodes a JSON or form-encoded (`payload=<json>`) body. */
export function parseBody(contentType: string | undefined, body: Buffer): unknown {
  return parseJson(bodyJson(contentType, body));
}

/**
 * The repository a delivery names, read before its signature is checked without parsing
 * the rest of the body: only the top-level `repository` and `project` values are parsed
 * (a few hundred bytes); everything else is stepped over. Unverified bodies are the
 * attacker's to shape, and parsing a 1 MiB `[{},{},…]` costs about 19 MiB of heap.
 * The body is parsed in full once a secret has signed it.
 */
export function claimedRepository(
  forge: Forge,
  contentType: string | undefined,
  body: Buffer,
): RepositoryIdentity | undefined {
  return repositoryOf(forge, topLevelFields(bodyJson(contentType, body), REPOSITORY_KEYS));
}

const REPOSITORY_KEYS: ReadonlySet<string> = new Set(['repository', 'project']);

/**
 * The `wanted` members of a JSON object's text, each parsed on its own (the last of a
 * repeated key, as JSON.parse keeps). Values are stepped over by their brackets and
 * strings only: a body that is not valid JSON elsewhere is refused by the full parse.
 */
export function topLevelFields(json: string, wanted: ReadonlySet<string>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const malformed = (what: string) =>
    new DeliveryRejected('malformed', `body is not valid JSON: ${what}`);
  let at = skipSpace(json, 0);
  if (json[at] !== '{') throw new DeliveryRejected('malformed', 'payload is not a JSON object');
  at = skipSpace(json, at + 1);
  if (json[at] === '}') return fields;
  for (;;) {
    if (json[at] !== '"') throw malformed(`expected a member name at ${at}`);
    const keyEnd = stringEnd(json, at);
    const key = parseJson(json.slice(at, keyEnd)) as string;
    at = skipSpace(json, keyEnd);
    if (json[at] !== ':') throw malformed(`expected ':' at ${at}`);
    const valueStart = skipSpace(json, at + 1);
    const valueEnd = valueEndOf(json, valueStart);
    if (wanted.has(key)) fields[key] = parseJson(json.slice(valueStart, valueEnd));
    at = skipSpace(json, valueEnd);
    if (json[at] === '}') return fields;
    if (json[at] !== ',') throw malformed(`expected ',' or '}' at ${at}`);
    at = skipSpace(json, at + 1);
  }
}

function skipSpace(json: string, at: number): number {
  while (at < json.length && ' \t\n\r'.includes(json[at]!)) at += 1;
  return at;
}

/** Past the closing quote of the string opening at `at`. */
function stringEnd(json: string, at: number): number {
  for (let i = at + 1; i < json.length; i += 1) {
    const char = json.charCodeAt(i);
    if (char === 0x5c)
      i += 1; // backslash: the next character is escaped
    else if (char === 0x22) return i + 1;
  }
  throw new DeliveryRejected('malformed', 'body is not valid JSON: unterminated string');
}

/** Past the value starting at `at`: a string, an object or array (to its bracket), or a literal. */
function valueEndOf(json: string, at: number): number {
  const first = json[at];
  if (first === '"') return stringEnd(json, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let i = at; i < json.length; i += 1) {
      const char = json[i];
      if (char === '"') i = stringEnd(json, i) - 1;
      else if (char === '{' || char === '[') depth += 1;
      else if ((char === '}' || char === ']') && --depth === 0) return i + 1;
    }
    throw new DeliveryRejected('malformed', 'body is not valid JSON: unclosed bracket');
  }
  let i = at;
  while (i < json.length && !',}] \t\n\r'.includes(json[i]!)) i += 1;
  if (i === at)
    throw new DeliveryRejected('malformed', `body is not valid JSON: no value at ${at}`);
  return i;
}

/** The names a payload gives its repository, normalised for matching. */
export interface RepositoryIdentity {
  /** `host/owner/repo` from its URLs, and the bare `owner/repo`. */
  names: string[];
  defaultBranch?: string;
}

export type NormalizedEvent =
  | { kind: 'ping'; repository?: RepositoryIdentity }
  | {
      kind: 'push';
      repository: RepositoryIdentity;
      ref: string;
      /** The pushed commit; undefined when the push deleted the ref. */
      after?: string;
      /**
       * The push rewrote the branch (`forced` of GitHub, Gitea and Forgejo). GitLab's
       * payload has no such field, so its pushes read as not forced: the builder then
       * deploys only commits that descend from the applied one.
       */
      forced: boolean;
    }
  | { kind: 'other'; name: string; repository?: RepositoryIdentity };

const ZERO_COMMIT = /^0{40}$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Turns `git@host:owner/repo.git`, `https://user@host:443/owner/repo.git/`, `host/owner/repo`
 * and `owner/repo` into the comparable `host/owner/repo` (or `owner/repo` without a host).
 */
export function normalizeRepository(text: string): string {
  let name = text.trim().toLowerCase();
  const scp = /^[^@/\s]+@([^:/\s]+):(.+)$/.exec(name);
  if (scp) name = `${scp[1]}/${scp[2]}`;
  else name = name.replace(/^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^/:]+)(?::\d+)?/, '$1');
  return name.replace(/\/+$/, '').replace(/\.git$/, '');
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

// Gitea and Forgejo describe a repository as GitHub does.
const GITHUB_REPOSITORY_FIELDS = [
  'full_name',
  'clone_url',
  'html_url',
  'ssh_url',
  'git_url',
  'url',
];
const REPOSITORY_FIELDS: Record<Forge, readonly string[]> = {
  github: GITHUB_REPOSITORY_FIELDS,
  gitea: GITHUB_REPOSITORY_FIELDS,
  forgejo: GITHUB_REPOSITORY_FIELDS,
  gitlab: ['path_with_namespace', 'git_http_url', 'git_ssh_url', 'web_url', 'http_url', 'ssh_url'],
};

/**
 * Normalised names by their text. A repository's deliveries repeat the same six URLs, and
 * their regular expressions were a visible share of a delivery's CPU; cleared when full,
 * since unsigned senders choose the text.
 */
const normalizedNames = new Map<string, string>();
const NORMALIZED_NAMES_MAX = 10_000;

function normalizedName(text: string): string {
  let name = normalizedNames.get(text);
  if (name === undefined) {
    if (normalizedNames.size >= NORMALIZED_NAMES_MAX) normalizedNames.clear();
    name = normalizeRepository(text);
    normalizedNames.set(text, name);
  }
  return name;
}

function repositoryOf(
  forge: Forge,
  payload: Record<string, unknown>,
): RepositoryIdentity | undefined {
  const source = record(forge === 'gitlab' ? payload.project : payload.repository);
  if (!source) return undefined;
  const names = new Set<string>();
  for (const field of REPOSITORY_FIELDS[forge]) {
    const value = text(source[field]);
    if (value !== undefined) names.add(normalizedName(value));
  }
  if (names.size === 0) return undefined;
  return { names: [...names], defaultBranch: text(source.default_branch) };
}

/** Reads what Seed needs from a decoded payload of the given forge and event. */
export function normalizeEvent(forge: Forge, event: string, payload: unknown): NormalizedEvent {
  const body = record(payload);
  if (!body) throw new DeliveryRejected('malformed', 'payload is not a JSON object');
  const repository = repositoryOf(forge, body);
  const isPush =
    forge === 'gitlab' ? event === 'Push Hook' || body.object_kind === 'push' : event === 'push';
  if (event === 'ping') return { kind: 'ping', repository };
  if (!isPush) return { kind: 'other', name: event || 'unknown', repository };

  const ref = text(body.ref);
  const after = text(body.after);
  if (!repository) throw new DeliveryRejected('malformed', 'push payload names no repository');
  if (!ref) throw new DeliveryRejected('malformed', 'push payload has no ref');
  if (!after || !COMMIT.test(after)) {
    throw new DeliveryRejected('malformed', 'push payload has no "after" commit (40 hex digits)');
  }
  const deleted = body.deleted === true || ZERO_COMMIT.test(after);
  const forced = forge !== 'gitlab' && body.forced === true;
  return { kind: 'push', repository, ref, after: deleted ? undefined : after, forced };
}
