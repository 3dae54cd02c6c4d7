/** The simulator draws from the project's one seeded generator (node/src/core/prng.ts). */
export { Prng } from '../../node/src/core/prng';
