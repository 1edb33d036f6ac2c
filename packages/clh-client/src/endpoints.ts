// Every endpoint this client calls, as the spec lists it: the HTTP method, the schema of
// the request body and of the 200 reply. Tests compare this table with the spec's
// `paths` and check that each client method hits the entry it names.

/** CH serves its API under this root (the spec's `servers[0].url`). */
export const API_ROOT = '/api/v1';

export interface EndpointSpec {
  method: 'GET' | 'PUT';
  /** `components.schemas` name of the JSON request body, when the endpoint takes one. */
  requestSchema?: string;
  /** `components.schemas` name of the JSON body of a 200 reply, when there is one. */
  responseSchema?: string;
}

export const CLH_ENDPOINTS = {
  'vmm.ping': { method: 'GET', responseSchema: 'VmmPingResponse' },
  'vmm.shutdown': { method: 'PUT' },
  'vm.create': { method: 'PUT', requestSchema: 'VmConfig' },
  'vm.boot': { method: 'PUT' },
  'vm.pause': { method: 'PUT' },
  'vm.resume': { method: 'PUT' },
  'vm.shutdown': { method: 'PUT' },
  'vm.delete': { method: 'PUT' },
  'vm.info': { method: 'GET', responseSchema: 'VmInfo' },
  'vm.resize': { method: 'PUT', requestSchema: 'VmResize' },
  'vm.snapshot': { method: 'PUT', requestSchema: 'VmSnapshotConfig' },
  'vm.restore': { method: 'PUT', requestSchema: 'RestoreConfig' },
  'vm.add-fs': { method: 'PUT', requestSchema: 'FsConfig', responseSchema: 'PciDeviceInfo' },
  'vm.add-vsock': { method: 'PUT', requestSchema: 'VsockConfig', responseSchema: 'PciDeviceInfo' },
} as const satisfies Record<string, EndpointSpec>;

export type ClhEndpoint = keyof typeof CLH_ENDPOINTS;

/** The request path of an endpoint, e.g. `/api/v1/vm.create`. */
export function endpointPath(endpoint: ClhEndpoint): string {
  return `${API_ROOT}/${endpoint}`;
}
