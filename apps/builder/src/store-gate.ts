/**
 * Keeps garbage collection out of the one stretch of a build nix does not protect: the
 * `.drv`s `nix eval` writes are rooted only while a nix process uses them, so a collection
 * between the eval and the build would take them. Builds `use` the store together; a
 * collection is `exclusive`: it waits for the builds inside, and builds arriving meanwhile
 * wait for it, so a busy builder cannot starve it.
 */
export class StoreGate {
  #users = 0;
  #collection: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  async use<T>(step: () => Promise<T>): Promise<T> {
    while (this.#collection !== undefined) await this.#collection;
    this.#users += 1;
    try {
      return await step();
    } finally {
      this.#users -= 1;
      if (this.#users === 0) this.#drained?.();
    }
  }

  async exclusive<T>(step: () => Promise<T>): Promise<T> {
    while (this.#collection !== undefined) await this.#collection;
    let release!: () => void;
    this.#collection = new Promise((resolve) => (release = resolve));
    try {
      if (this.#users > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      return await step();
    } finally {
      this.#drained = undefined;
      this.#collection = undefined;
      release();
    }
  }
}
