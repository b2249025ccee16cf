/** The fleet's prober, in a process of its own (see fleet.ts probeWhile). */
import { proberMain } from './fleet.ts';

await proberMain();
