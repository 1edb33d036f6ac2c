import { describe, expect, it } from '@jest/globals';
import { renderGeneration } from '../src';
import { architectureExample, everything, generation } from './fixtures';

// The checked-in snapshot is the rendered behaviour: a change to it is a change to what
// Seed applies to every cluster, and shows up in review as such.
describe('the example of ARCHITECTURE.md', () => {
  it('renders to the checked-in objects', () => {
    expect(renderGeneration(architectureExample)).toMatchSnapshot();
  });
});

describe('a flake that uses every option', () => {
  it('renders to the checked-in objects', () => {
    expect(renderGeneration(generation(everything))).toMatchSnapshot();
  });
});
