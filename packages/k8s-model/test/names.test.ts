import { describe, expect, it } from '@jest/globals';
import {
  connectEnvNames,
  exposePortName,
  instanceObjectName,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
  isEnvVarName,
  isIanaServiceName,
  isLabelValue,
  namespaceName,
  pvcName,
  selectorLabels,
  storageVolumeName,
} from '../src';
import { modelErrorOf } from './helpers';

describe('name predicates', () => {
  it.each([
    [isDns1123Label, 'web', true],
    [isDns1123Label, '0web', true],
    [isDns1123Label, 'a'.repeat(63), true],
    [isDns1123Label, 'a'.repeat(64), false],
    [isDns1123Label, 'Web', false],
    [isDns1123Label, 'web-', false],
    [isDns1123Label, 'a.b', false],
    [isDns1123Label, '', false],
    [isDns1123Subdomain, 'a.b-c.d', true],
    [
      isDns1123Subdomain,
      `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`,
      true,
    ],
    [isDns1123Subdomain, 'a'.repeat(254), false],
    [isDns1123Subdomain, 'a..b', false],
    [isDns1035Label, 'web', true],
    [isDns1035Label, '0web', false],
    [isDns1035Label, 'a'.repeat(64), false],
    [isLabelValue, '', true],
    [isLabelValue, 'My_value.1', true],
    [isLabelValue, '_x', false],
    [isLabelValue, 'x'.repeat(64), false],
    [isIanaServiceName, 'http', true],
    [isIanaServiceName, 'dns-udp', true],
    [isIanaServiceName, 'a'.repeat(15), true],
    [isIanaServiceName, 'a'.repeat(16), false],
    [isIanaServiceName, '8080', false],
    [isIanaServiceName, 'a--b', false],
    [isIanaServiceName, 'Http', false],
    [isEnvVarName, 'SEED_DB_HOST', true],
    [isEnvVarName, '1X', false],
    [isEnvVarName, 'SEED-DB', false],
  ])('%p(%j) is %p', (predicate, value, expected) => {
    expect(predicate(value)).toBe(expected);
  });
});

describe('name makers', () => {
  it('name objects after the instance and its option keys', () => {
    expect(instanceObjectName('web')).toBe('web');
    expect(namespaceName('s-gaydazldmnsg')).toBe('s-gaydazldmnsg');
    expect(pvcName('web', 'data')).toBe('seed-web-data');
    expect(storageVolumeName('web', 'data')).toBe('data');
    expect(selectorLabels('web')).toEqual({
      'seed.loom.farm/managed-by': 'seed',
      'seed.loom.farm/instance': 'web',
    });
  });

  it.each([
    ['http', 'http', 'TCP', 'http'],
    ['metrics', 'tcp', 'TCP', 'metrics'],
    ['game', 'udp', 'UDP', 'game'],
    ['dns', 'dns', 'TCP', 'dns-tcp'],
    ['dns', 'dns', 'UDP', 'dns-udp'],
    ['rpc', 'grpc', 'TCP', 'rpc'],
  ] as const)('names port %s (%s) on %s %s', (key, protocol, transport, expected) => {
    expect(exposePortName('web', key, protocol, transport)).toBe(expected);
  });

  it.each([
    ['db', { host: 'SEED_DB_HOST', port: 'SEED_DB_PORT' }],
    ['my-cache', { host: 'SEED_MY_CACHE_HOST', port: 'SEED_MY_CACHE_PORT' }],
    ['s3', { host: 'SEED_S3_HOST', port: 'SEED_S3_PORT' }],
  ])('names the variables of connect key %s', (key, expected) => {
    expect(connectEnvNames('web', key)).toEqual(expected);
  });

  it.each([
    [
      'an instance name of 64 characters',
      () => instanceObjectName('a'.repeat(64)),
      {
        instance: 'a'.repeat(64),
        field: 'name',
        reason: `instance name "${'a'.repeat(64)}" is 64 characters; a DNS-1035 label has at most 63`,
      },
    ],
    [
      'an upper-case instance name',
      () => instanceObjectName('Web'),
      {
        instance: 'Web',
        field: 'name',
        reason: expect.stringContaining('is not a DNS-1035 label'),
      },
    ],
    [
      'an instance name that starts with a digit (Service names cannot)',
      () => instanceObjectName('1web'),
      { instance: '1web', field: 'name', reason: expect.stringContaining('a letter first') },
    ],
    [
      'a PersistentVolumeClaim name over 253 characters',
      () => pvcName('web', 'k'.repeat(250)),
      {
        instance: 'web',
        field: `meta.storage.${'k'.repeat(250)}`,
        reason: expect.stringMatching(/is 259 characters; a DNS-1123 subdomain has at most 253$/),
      },
    ],
    [
      'a storage key that is no volume name',
      () => storageVolumeName('web', 'Data'),
      {
        instance: 'web',
        field: 'meta.storage.Data',
        reason: expect.stringContaining('volume name "Data" is not a DNS-1123 label'),
      },
    ],
    [
      'a dns expose key making a port name over 15',
      () => exposePortName('web', 'nameserver12', 'dns', 'UDP'),
      {
        instance: 'web',
        field: 'meta.expose.nameserver12',
        reason:
          'port name "nameserver12-udp" is 16 characters; an IANA service name has at most 15',
      },
    ],
    [
      'an expose key over 15 characters',
      () => exposePortName('web', 'sixteen-chars-xx', 'tcp', 'TCP'),
      {
        instance: 'web',
        field: 'meta.expose.sixteen-chars-xx',
        reason:
          'port name "sixteen-chars-xx" is 16 characters; an IANA service name has at most 15',
      },
    ],
    [
      'an expose key with a double dash',
      () => exposePortName('web', 'a--b', 'http', 'TCP'),
      { instance: 'web', field: 'meta.expose.a--b', reason: expect.stringContaining("no '--'") },
    ],
    [
      'an upper-case connect key',
      () => connectEnvNames('web', 'DB'),
      { instance: 'web', field: 'meta.connect.DB', reason: expect.stringContaining('connect key') },
    ],
    [
      'a namespace that is no DNS label',
      () => namespaceName('S_Flake'),
      {
        instance: undefined,
        field: 'namespace',
        reason: expect.stringContaining('DNS-1123 label'),
      },
    ],
  ])('rejects %s', (_what, run, expected) => {
    expect(modelErrorOf(run)).toEqual(expected);
  });

  it('names the instance and field first in the message', () => {
    expect(exposePortName('web', 'nameserver1', 'dns', 'UDP')).toBe('nameserver1-udp');
    expect(() => exposePortName('web', 'nameserver12', 'dns', 'UDP')).toThrow(
      'seeds.web.meta.expose.nameserver12: port name "nameserver12-udp" is 16 characters',
    );
  });
});
