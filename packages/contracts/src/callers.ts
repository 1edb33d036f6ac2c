/**
 * The identities (client certificate CNs) of the platform's own callers. docs/security.md
 * shows this table; the reconciler's gRPC server enforces it for every call.
 */
export const PLATFORM_IDENTITIES = {
  /** The builders: hand generations to the reconciler. */
  builder: 'builder',
  /** People and tools that run the platform: read status, roll flakes back. */
  operator: 'operator',
  /** Dashboards and audits: read only. */
  reader: 'reader',
} as const;
export type PlatformIdentity = (typeof PLATFORM_IDENTITIES)[keyof typeof PLATFORM_IDENTITIES];

const { builder, operator, reader } = PLATFORM_IDENTITIES;

/**
 * Who may call each `seed.v1.Reconciler` method. A method the proto gains without a line
 * here stops the server at start-up (service-kit checks), so nothing is served by default.
 */
export const RECONCILER_CALLERS: Record<string, readonly PlatformIdentity[]> = {
  ApplyGeneration: [builder],
  // The builder reads the flake's applied revision before a build, so that it deploys
  // only commits that descend from it (docs/builder.md, "Only forward").
  GetStatus: [builder, operator, reader],
  ListStatus: [operator, reader],
  Rollback: [operator],
};
