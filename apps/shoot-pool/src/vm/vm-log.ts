/** What the drivers log through: pino's Logger fits, and so does a test's recorder. */
export interface VmLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export const silentLog: VmLog = {
  info: () => undefined,
  warn: () => undefined,
};
