/**
 * One VM's undo list. Each resource registers its undo the moment it is acquired; `run`
 * undoes everything once, newest first, and carries on past failures so one stuck step
 * cannot leak the rest. Registering after the stack ran undoes at once: a resource that
 * raced a teardown is released, not forgotten.
 */
export interface CleanupFailure {
  label: string;
  error: unknown;
}

type Undo = () => void | Promise<void>;

export class CleanupStack {
  readonly #steps: { label: string; undo: Undo }[] = [];
  #running: Promise<CleanupFailure[]> | undefined;

  /** Whether `run` has been called. */
  get ran(): boolean {
    return this.#running !== undefined;
  }

  /** The labels still to undo, oldest first (for diagnostics and tests). */
  get labels(): string[] {
    return this.#steps.map((step) => step.label);
  }

  /**
   * Registers `undo` for a resource just acquired. After `run` it is undone immediately
   * and its failure, if any, is returned.
   */
  push(label: string, undo: Undo): Promise<CleanupFailure | undefined> {
    if (this.#running === undefined) {
      this.#steps.push({ label, undo });
      return Promise.resolve(undefined);
    }
    return attempt(label, undo);
  }

  /**
   * Undoes every registered step once, newest first, and resolves with the steps that
   * failed. Later calls return the same promise.
   */
  run(): Promise<CleanupFailure[]> {
    this.#running ??= this.#unwind();
    return this.#running;
  }

  async #unwind(): Promise<CleanupFailure[]> {
    const failures: CleanupFailure[] = [];
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      const failure = await attempt(step.label, step.undo);
      if (failure !== undefined) failures.push(failure);
    }
    return failures;
  }
}

async function attempt(label: string, undo: Undo): Promise<CleanupFailure | undefined> {
  try {
    await undo();
    return undefined;
  } catch (error) {
    return { label, error };
  }
}
