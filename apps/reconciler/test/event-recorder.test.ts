import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@seed/service-kit';
import { EventRecorder } from '../src/event-recorder';

type Sent = [string, string];

/** A KubeRepository stand-in that records what it was asked, slowly, failing on `fail`. */
function fakeKube(sent: Sent[]) {
  return {
    recordEvent: async (
      involved: { name: string },
      _type: string,
      reason: string,
    ): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (reason === 'fail') throw new Error('refused');
      sent.push([involved.name, reason]);
    },
  };
}

const involved = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name });

describe('EventRecorder', () => {
  it('sends in order, one at a time, goes on after a failure, and drops beyond its bound', async () => {
    const sent: Sent[] = [];
    const recorder = new EventRecorder(fakeKube(sent), createLogger('test', 'silent'), 3);
    recorder.record(involved('a'), 'Normal', 'one', 'm');
    recorder.record(involved('b'), 'Normal', 'fail', 'm');
    recorder.record(involved('c'), 'Normal', 'two', 'm');
    recorder.record(involved('d'), 'Normal', 'three', 'm'); // the first is in flight: room
    recorder.record(involved('e'), 'Normal', 'dropped', 'm');
    expect(sent).toEqual([]); // nobody waits for them
    await recorder.flush();
    expect(sent).toEqual([
      ['a', 'one'],
      ['c', 'two'],
      ['d', 'three'],
    ]);
    recorder.record(involved('f'), 'Normal', 'again', 'm');
    await recorder.flush();
    expect(sent.at(-1)).toEqual(['f', 'again']);
  });
});
