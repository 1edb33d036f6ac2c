import { ClhError } from './errors';
import type { ClhEndpoint } from './endpoints';
import { VM_STATES, type PciDeviceInfo, type VmInfo, type VmmPingResponse } from './types';

// Checks of what CH answers: only the fields the spec requires, so a newer CH that adds
// fields still reads. Each check returns the first problem found, or undefined.
type Check = (value: unknown) => string | undefined;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const checkPing: Check = (value) => {
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value.version !== 'string') return '"version" is not a string';
  return undefined;
};

const checkVmInfo: Check = (value) => {
  if (!isObject(value)) return 'not a JSON object';
  if (!isObject(value.config)) return '"config" is not an object';
  if (!isObject(value.config.payload)) return '"config.payload" is not an object';
  if (!VM_STATES.includes(value.state as VmInfo['state'])) {
    return `"state" ${JSON.stringify(value.state)} is not one of ${VM_STATES.join(', ')}`;
  }
  return undefined;
};

const checkPciDeviceInfo: Check = (value) => {
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value.id !== 'string') return '"id" is not a string';
  if (typeof value.bdf !== 'string') return '"bdf" is not a string';
  return undefined;
};

function parseReply<T>(endpoint: ClhEndpoint, body: Buffer, schema: string, check: Check): T {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ClhError('protocol', endpoint, `reply is not JSON: ${preview(body)}`);
  }
  const problem = check(value);
  if (problem !== undefined) {
    throw new ClhError('protocol', endpoint, `reply is not a ${schema}: ${problem}`);
  }
  return value as T;
}

export const parsePing = (endpoint: ClhEndpoint, body: Buffer): VmmPingResponse =>
  parseReply(endpoint, body, 'VmmPingResponse', checkPing);

export const parseVmInfo = (endpoint: ClhEndpoint, body: Buffer): VmInfo =>
  parseReply(endpoint, body, 'VmInfo', checkVmInfo);

export const parsePciDeviceInfo = (endpoint: ClhEndpoint, body: Buffer): PciDeviceInfo =>
  parseReply(endpoint, body, 'PciDeviceInfo', checkPciDeviceInfo);

/**
 * CH's error text. Recent CH answers a JSON array of messages, the error and its causes
 * from outermost to root; older releases answered plain text. Both become one line.
 */
export function errorText(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) {
      return parsed.join(': ');
    }
    if (typeof parsed === 'string') return parsed;
  } catch {
    // plain text
  }
  return text.length > 4096 ? `${text.slice(0, 4096)}…` : text;
}

function preview(body: Buffer): string {
  const text = body.toString('utf8');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}
