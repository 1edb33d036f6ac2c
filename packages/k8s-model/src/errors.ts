/**
 * A generation that cannot become valid Kubernetes objects: a name too long or malformed
 * for the object or label it would become, two things that would share one name. It is
 * thrown while rendering, so it reaches the caller before anything is sent to the API
 * server. It never succeeds on retry: the flake has to change (a `TerminalError` for the
 * reconciler).
 */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly retryable = false;
  /** The `seeds.<instance>` at fault, or undefined for the generation as a whole. */
  readonly instance: string | undefined;
  /** Where the value came from, relative to `seeds.<instance>` (`meta.expose.http`). */
  readonly field: string;
  readonly reason: string;

  constructor(problem: { instance?: string; field: string; reason: string }) {
    const where =
      problem.instance === undefined ? problem.field : `seeds.${problem.instance}.${problem.field}`;
    super(`${where}: ${problem.reason}`);
    this.instance = problem.instance;
    this.field = problem.field;
    this.reason = problem.reason;
  }
}
