import { describe, expect, it } from '@jest/globals';
import {
  DeliveryRejected,
  deliveryIdOf,
  detectForge,
  claimedRepository,
  normalizeEvent,
  normalizeRepository,
  parseBody,
  topLevelFields,
  signatureMatches,
  signatureOf,
} from '../src/deliveries';
import {
  giteaPush,
  githubBranchDeletion,
  githubPing,
  githubPush,
  githubTagPush,
  gitlabPush,
  hmacHex,
} from './forge-payloads';

const COMMIT = 'a'.repeat(40);

function rejection(action: () => unknown): DeliveryRejected {
  try {
    action();
  } catch (error) {
    if (error instanceof DeliveryRejected) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('detectForge', () => {
  it.each([
    [{ 'x-github-event': 'push' }, 'github'],
    [{ 'x-github-event': 'push', 'x-gitea-event': 'push' }, 'gitea'],
    [{ 'x-github-event': 'push', 'x-gitea-event': 'push', 'x-forgejo-event': 'push' }, 'forgejo'],
    [{ 'x-gitlab-event': 'Push Hook' }, 'gitlab'],
    [{}, undefined],
  ])('%j is %s', (headers, forge) => {
    expect(detectForge(headers)).toBe(forge);
  });
});

describe('signatures', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');

  it('verifies GitHub sha256= signatures and refuses other secrets', () => {
    const signature = signatureOf('github', {
      'x-hub-signature-256': `sha256=${hmacHex('s3cret', body)}`,
    })!;
    expect(signatureMatches(signature, body, 's3cret')).toBe(true);
    expect(signatureMatches(signature, body, 'other')).toBe(false);
    expect(signatureMatches(signature, Buffer.from(`${body.toString()} `), 's3cret')).toBe(false);
  });

  it('verifies bare-hex Gitea and Forgejo signatures', () => {
    const hex = hmacHex('s3cret', body);
    expect(
      signatureMatches(signatureOf('gitea', { 'x-gitea-signature': hex })!, body, 's3cret'),
    ).toBe(true);
    expect(
      signatureMatches(signatureOf('forgejo', { 'x-forgejo-signature': hex })!, body, 's3cret'),
    ).toBe(true);
    expect(
      signatureMatches(signatureOf('forgejo', { 'x-gitea-signature': hex })!, body, 's3cret'),
    ).toBe(true);
  });

  it('compares GitLab tokens whatever their length', () => {
    const token = signatureOf('gitlab', { 'x-gitlab-token': 's3cret' })!;
    expect(signatureMatches(token, body, 's3cret')).toBe(true);
    expect(signatureMatches(token, body, 's3cret-but-longer')).toBe(false);
    expect(signatureMatches(token, body, '')).toBe(false);
  });

  it('tells a missing signature from a malformed one', () => {
    expect(signatureOf('github', {})).toBeUndefined();
    expect(
      rejection(() => signatureOf('github', { 'x-hub-signature-256': 'sha1=abc' })).reason,
    ).toBe('unauthorized');
    expect(rejection(() => signatureOf('gitea', { 'x-gitea-signature': 'zz' })).reason).toBe(
      'unauthorized',
    );
  });
});

describe('deliveryIdOf', () => {
  it('reads each forge header and falls back to the body hash', () => {
    const body = Buffer.from('{}');
    expect(deliveryIdOf('github', { 'x-github-delivery': 'abc-1' }, body)).toBe('abc-1');
    expect(deliveryIdOf('forgejo', { 'x-gitea-delivery': 'g-1' }, body)).toBe('g-1');
    expect(
      deliveryIdOf('gitlab', { 'idempotency-key': 'k', 'x-gitlab-event-uuid': 'u' }, body),
    ).toBe('k');
    expect(deliveryIdOf('gitlab', { 'x-gitlab-event-uuid': 'u' }, body)).toBe('u');
    expect(deliveryIdOf('gitlab', {}, body)).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(
      rejection(() => deliveryIdOf('github', { 'x-github-delivery': 'a b' }, body)).reason,
    ).toBe('malformed');
  });
});

describe('parseBody', () => {
  const json = JSON.stringify({ ref: 'refs/heads/main' });

  it('reads JSON and form-encoded payload= bodies', () => {
    expect(parseBody('application/json; charset=utf-8', Buffer.from(json))).toEqual({
      ref: 'refs/heads/main',
    });
    const form = Buffer.from(new URLSearchParams({ payload: json }).toString());
    expect(parseBody('application/x-www-form-urlencoded', form)).toEqual({
      ref: 'refs/heads/main',
    });
  });

  it.each([
    ['application/json', '{"ref":', 'malformed', 'body is not valid JSON'],
    ['application/x-www-form-urlencoded', 'other=1', 'malformed', 'no payload field'],
    ['text/plain', json, 'unsupported-media-type', 'unsupported content type "text/plain"'],
    [undefined, json, 'unsupported-media-type', '(none)'],
  ])('refuses %s %s', (contentType, body, reason, message) => {
    const error = rejection(() => parseBody(contentType, Buffer.from(body)));
    expect(error.reason).toBe(reason);
    expect(error.message).toContain(message);
  });
});

describe('claimedRepository: the repository read before a signature is checked', () => {
  const keys = new Set(['repository', 'project']);

  it('names the same repository as the full parse, for every forge', () => {
    const cases = [
      ['github', githubPush(COMMIT)],
      ['gitea', giteaPush('gitea.example', 'acme/app', COMMIT)],
      ['gitlab', gitlabPush('gitlab.example', 'group/app', COMMIT)],
    ] as const;
    for (const [forge, payload] of cases) {
      const body = Buffer.from(JSON.stringify(payload, null, 2));
      const full = normalizeEvent(forge, forge === 'gitlab' ? 'Push Hook' : 'push', payload);
      expect(claimedRepository(forge, 'application/json', body)).toEqual(full.repository);
    }
    const form = Buffer.from(
      new URLSearchParams({ payload: JSON.stringify(githubPush(COMMIT)) }).toString(),
    );
    expect(claimedRepository('github', 'application/x-www-form-urlencoded', form)?.names).toContain(
      'codertocat/hello-world',
    );
  });

  it('steps over everything but the wanted members, strings and brackets included', () => {
    const json = `{ "a": [1, {"b": "}]\\"}"}, "x\\"y"], "n": -1.5e3, "t": true, "repository": {"full_name": "o/r"}, "z": null, "repository": {"full_name": "last/wins"} }`;
    expect(JSON.parse(json)).toMatchObject({ repository: { full_name: 'last/wins' } });
    expect(topLevelFields(json, keys)).toEqual({ repository: { full_name: 'last/wins' } });
    expect(topLevelFields(' {} ', keys)).toEqual({});
  });

  it.each([
    ['[{},{}]', 'payload is not a JSON object'],
    ['{"repository": {"full_name": "o/r"', 'unclosed bracket'],
    ['{"a": "unterminated', 'unterminated string'],
    ['{"a" 1}', "expected ':'"],
    ['{"a": 1 "b": 2}', "expected ',' or '}'"],
    ['{"a": }', 'no value'],
  ])('refuses %s', (json, message) => {
    const error = rejection(() => topLevelFields(json, keys));
    expect(error.reason).toBe('malformed');
    expect(error.message).toContain(message);
  });
});

describe('normalizeRepository', () => {
  it.each([
    ['https://github.com/Codertocat/Hello-World.git', 'github.com/codertocat/hello-world'],
    ['git@github.com:Codertocat/Hello-World.git', 'github.com/codertocat/hello-world'],
    ['ssh://git@gitlab.example:2222/group/sub/app.git', 'gitlab.example/group/sub/app'],
    ['https://user@gitea.example/acme/app/', 'gitea.example/acme/app'],
    ['github.com/acme/app', 'github.com/acme/app'],
    ['Acme/App', 'acme/app'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeRepository(input)).toBe(expected);
  });
});

describe('normalizeEvent', () => {
  it('reads a GitHub branch push with every name of its repository', () => {
    const event = normalizeEvent('github', 'push', githubPush(COMMIT));
    expect(event).toEqual({
      kind: 'push',
      ref: 'refs/heads/master',
      after: COMMIT,
      forced: false,
      repository: {
        names: expect.arrayContaining([
          'codertocat/hello-world',
          'github.com/codertocat/hello-world',
        ]),
        defaultBranch: 'master',
      },
    });
  });

  it('reads tag pushes, deletions and pings', () => {
    expect(normalizeEvent('github', 'push', githubTagPush())).toMatchObject({
      kind: 'push',
      ref: 'refs/tags/simple-tag',
    });
    expect(normalizeEvent('github', 'push', githubBranchDeletion())).toMatchObject({
      kind: 'push',
      after: undefined,
    });
    expect(normalizeEvent('github', 'ping', githubPing()).kind).toBe('ping');
    expect(normalizeEvent('github', 'issues', {}).kind).toBe('other');
  });

  it('reads Gitea and GitLab pushes', () => {
    expect(
      normalizeEvent('gitea', 'push', giteaPush('gitea.example', 'acme/app', COMMIT)),
    ).toMatchObject({
      kind: 'push',
      after: COMMIT,
      repository: {
        names: expect.arrayContaining(['gitea.example/acme/app']),
        defaultBranch: 'main',
      },
    });
    expect(
      normalizeEvent('gitlab', 'Push Hook', gitlabPush('gitlab.example', 'group/app', COMMIT)),
    ).toMatchObject({
      kind: 'push',
      ref: 'refs/heads/main',
      repository: { names: expect.arrayContaining(['group/app', 'gitlab.example/group/app']) },
    });
    expect(
      normalizeEvent(
        'gitlab',
        'Tag Push Hook',
        gitlabPush('gitlab.example', 'group/app', COMMIT, { tag: true }),
      ).kind,
    ).toBe('other');
  });

  it('reads a forced push from GitHub and Gitea, and none from GitLab', () => {
    expect(normalizeEvent('github', 'push', { ...githubPush(COMMIT), forced: true })).toMatchObject(
      { kind: 'push', forced: true },
    );
    expect(
      normalizeEvent('gitea', 'push', {
        ...giteaPush('gitea.example', 'acme/app', COMMIT),
        forced: true,
      }),
    ).toMatchObject({ kind: 'push', forced: true });
    // Only a JSON true counts: a string from a careless sender is not a force-push.
    expect(
      normalizeEvent('github', 'push', { ...githubPush(COMMIT), forced: 'true' }),
    ).toMatchObject({ forced: false });
    expect(
      normalizeEvent('gitlab', 'Push Hook', {
        ...gitlabPush('gitlab.example', 'group/app', COMMIT),
        forced: true,
      }),
    ).toMatchObject({ forced: false });
  });

  it('refuses pushes it cannot act on', () => {
    expect(rejection(() => normalizeEvent('github', 'push', [])).message).toContain(
      'not a JSON object',
    );
    expect(
      rejection(() => normalizeEvent('github', 'push', { ...githubPush(COMMIT), after: 'HEAD' }))
        .message,
    ).toContain('"after"');
    expect(
      rejection(() => normalizeEvent('github', 'push', { ref: 'refs/heads/x', after: COMMIT }))
        .message,
    ).toContain('no repository');
  });
});
