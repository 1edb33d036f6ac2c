import { ClhError } from './errors';
import type { ClhEndpoint } from './endpoints';
import { sendApiRequest, type ApiReply } from './http';
import { errorText, parsePciDeviceInfo, parsePing, parseVmInfo } from './replies';
import type {
  FsConfig,
  PciDeviceInfo,
  RestoreConfig,
  VmConfig,
  VmInfo,
  VmmPingResponse,
  VmResize,
  VmSnapshotConfig,
  VsockConfig,
} from './types';

export interface ClhClientOptions {
  /** Deadline of one API call, from connecting to the reply's last byte; 10 s by default. */
  timeoutMs?: number;
}

export interface CallOptions {
  /**
   * This call's deadline instead of the client's. Snapshot and restore copy guest memory
   * and take longer the more of it there is.
   */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A typed client of one Cloud Hypervisor process's REST API, over its `--api-socket`.
 * Each call opens a connection of its own and closes it after the reply: CH serves the
 * API on one thread and gains nothing from reuse, and a fresh connection keeps one
 * stuck call from holding up the next. Every failure is a `ClhError`.
 */
export class ClhClient {
  readonly #timeoutMs: number;

  constructor(
    readonly socketPath: string,
    options: ClhClientOptions = {},
  ) {
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Whether the VMM answers, and its version. Works before any VM exists. */
  async ping(call?: CallOptions): Promise<VmmPingResponse> {
    return parsePing('vmm.ping', await this.#fetchBody('vmm.ping', call));
  }

  /** Creates the VM from `config` without booting it. */
  async create(config: VmConfig, call?: CallOptions): Promise<void> {
    await this.#send('vm.create', config, call);
  }

  async boot(call?: CallOptions): Promise<void> {
    await this.#send('vm.boot', undefined, call);
  }

  async pause(call?: CallOptions): Promise<void> {
    await this.#send('vm.pause', undefined, call);
  }

  async resume(call?: CallOptions): Promise<void> {
    await this.#send('vm.resume', undefined, call);
  }

  /** Shuts the VM down; it stays created and can boot again. */
  async shutdown(call?: CallOptions): Promise<void> {
    await this.#send('vm.shutdown', undefined, call);
  }

  /** Deletes the VM; the VMM keeps running and can create another. */
  async delete(call?: CallOptions): Promise<void> {
    await this.#send('vm.delete', undefined, call);
  }

  /** The VM's configuration and state; `rejected` with status 404 before `create`. */
  async info(call?: CallOptions): Promise<VmInfo> {
    return parseVmInfo('vm.info', await this.#fetchBody('vm.info', call));
  }

  async resize(resize: VmResize, call?: CallOptions): Promise<void> {
    await this.#send('vm.resize', resize, call);
  }

  /**
   * Writes a snapshot of the VM, which must be paused, into the existing directory named by
   * `destination_url` (`file:///path`).
   */
  async snapshot(
    config: VmSnapshotConfig & { destination_url: string },
    call?: CallOptions,
  ): Promise<void> {
    await this.#send('vm.snapshot', config, call);
  }

  /** Restores a VM from a snapshot; the VMM must have no VM yet. Paused unless `resume`. */
  async restore(config: RestoreConfig, call?: CallOptions): Promise<void> {
    await this.#send('vm.restore', config, call);
  }

  /**
   * Adds a virtio-fs device. A running VM gets it hot-plugged and CH says where
   * (`PciDeviceInfo`); a VM that is created but not booted gets it added to its
   * configuration, and CH answers 204 with nothing to return: `undefined`.
   */
  async addFs(fs: FsConfig, call?: CallOptions): Promise<PciDeviceInfo | undefined> {
    return this.#addDevice('vm.add-fs', fs, call);
  }

  /** Adds a vsock device; the same hot/cold answers as `addFs`. */
  async addVsock(vsock: VsockConfig, call?: CallOptions): Promise<PciDeviceInfo | undefined> {
    return this.#addDevice('vm.add-vsock', vsock, call);
  }

  /** Stops the VMM process itself; its socket goes away. */
  async shutdownVmm(call?: CallOptions): Promise<void> {
    await this.#send('vmm.shutdown', undefined, call);
  }

  async #addDevice(
    endpoint: ClhEndpoint,
    body: FsConfig | VsockConfig,
    call: CallOptions | undefined,
  ): Promise<PciDeviceInfo | undefined> {
    const reply = await this.#send(endpoint, body, call);
    if (reply.status === 204) return undefined;
    return parsePciDeviceInfo(endpoint, reply.body);
  }

  /** A call whose success carries a body: CH answers 200 with JSON. */
  async #fetchBody(endpoint: ClhEndpoint, call: CallOptions | undefined): Promise<Buffer> {
    const reply = await this.#send(endpoint, undefined, call);
    if (reply.status !== 200) {
      throw new ClhError('protocol', endpoint, `expected 200 with a body, got ${reply.status}`);
    }
    return reply.body;
  }

  /** One request; any 2xx is success, 4xx/5xx is CH rejecting it. */
  async #send(
    endpoint: ClhEndpoint,
    body: unknown,
    call: CallOptions | undefined,
  ): Promise<ApiReply> {
    const reply = await sendApiRequest(
      this.socketPath,
      endpoint,
      body,
      call?.timeoutMs ?? this.#timeoutMs,
    );
    if (reply.status >= 200 && reply.status < 300) return reply;
    if (reply.status >= 400 && reply.status < 600) {
      const detail = errorText(reply.body);
      const says = detail === '' ? 'no error text' : detail;
      throw new ClhError(
        'rejected',
        endpoint,
        `Cloud Hypervisor answered ${reply.status}: ${says}`,
        {
          status: reply.status,
          detail,
        },
      );
    }
    throw new ClhError('protocol', endpoint, `unexpected HTTP status ${reply.status}`);
  }
}
