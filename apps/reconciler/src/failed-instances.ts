import type { InstanceRollout } from './instance-rollout';

/**
 * Which instances turned failed since the flake was last looked at, so that a failure is
 * told once (a `InstanceFailed` Event) and not on every reconcile of the flake. An
 * instance is told again when it fails for another reason, or fails again after having
 * been available; being merely `progressing` in between does not count, so a crash loop
 * (failed while backing off, progressing while it runs) is one Event, not one per restart.
 * In memory: after a restart each failed instance is told once more, which the Event's
 * aggregation (same name, `count` raised) absorbs.
 */
export class FailedInstances {
  /** namespace → instance → the reason last told. */
  private readonly told = new Map<string, Map<string, string>>();

  /** The instances to tell about, given the rollout of every instance of the flake. */
  turnedFailed(
    namespace: string,
    rollouts: ReadonlyMap<string, InstanceRollout>,
  ): { instance: string; rollout: InstanceRollout }[] {
    const told = this.told.get(namespace) ?? new Map<string, string>();
    const news: { instance: string; rollout: InstanceRollout }[] = [];
    for (const instance of told.keys()) if (!rollouts.has(instance)) told.delete(instance);
    for (const [instance, rollout] of rollouts) {
      if (rollout.rollout === 'available') told.delete(instance);
      if (rollout.rollout !== 'failed' || told.get(instance) === rollout.reason) continue;
      told.set(instance, rollout.reason);
      news.push({ instance, rollout });
    }
    if (told.size > 0) this.told.set(namespace, told);
    else this.told.delete(namespace);
    return news;
  }
}
