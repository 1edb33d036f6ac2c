import { describe, expect, it } from '@jest/globals';
import { BenchInputError, median, parseBenchSettings } from '../src';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('parseBenchSettings', () => {
  const settings = { BENCH_SAMPLES: 10, BENCH_WARM_UP: { default: 1, min: 0 } };

  it('takes the defaults for unset or empty variables, and whole numbers given', () => {
    expect(parseBenchSettings(settings, {})).toEqual({ BENCH_SAMPLES: 10, BENCH_WARM_UP: 1 });
    expect(parseBenchSettings(settings, { BENCH_SAMPLES: '', BENCH_WARM_UP: '0' })).toEqual({
      BENCH_SAMPLES: 10,
      BENCH_WARM_UP: 0,
    });
    expect(parseBenchSettings(settings, { BENCH_SAMPLES: '250' }).BENCH_SAMPLES).toBe(250);
  });

  it('names every bad variable at once: not a number, a fraction, below the least', () => {
    let thrown: unknown;
    try {
      parseBenchSettings(settings, { BENCH_SAMPLES: 'ten', BENCH_WARM_UP: '-1' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BenchInputError);
    expect((thrown as BenchInputError).problems).toEqual([
      'BENCH_SAMPLES="ten": expected a whole number, at least 1',
      'BENCH_WARM_UP="-1": expected a whole number, at least 0',
    ]);
    expect(() => parseBenchSettings(settings, { BENCH_SAMPLES: '1.5' })).toThrow(
      'BENCH_SAMPLES="1.5": expected a whole number, at least 1',
    );
    expect(() => parseBenchSettings(settings, { BENCH_SAMPLES: '0' })).toThrow('at least 1');
  });
});
