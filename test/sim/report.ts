/** How a simulated run is shown to a person: one status line, the setting, the figures, and on failure the violations and the replay command. */
import type { SimResult } from './simulation';

export function formatResult(result: SimResult): string {
  const s = result.stats;
  const c = result.config;
  const head = `seed ${result.seed}: ${result.violations.length === 0 ? 'ok' : 'FAILED'}`;
  const shape = `${c.nodes} nodes Q=${c.partitionCount} maxSiblings=${c.maxSiblings} drop=${c.faults.dropProbability} dup=${c.faults.duplicateProbability} late=${c.faults.lateProbability} skew<=${c.clockSkewMsMax}ms spares=${c.spares} membership-events=${c.membershipEvents} ae=${c.antiEntropyIntervalMs}ms handoff-batch=${c.handoffBatchKeysMax}`;
  const figures = `ops ${s.operationsOk}/${s.operations} ok, elements attempted ${s.attempted} acknowledged ${s.acknowledged} lost ${s.lost} (cap ${s.lostToSiblingCap}, dw=0 ${s.lostVolatile}) unexpected ${s.unexpected}; crashes ${s.crashes} partitions ${s.partitions} unsynced lost ${s.unsyncedLost}; messages ${s.network.delivered} dropped ${s.network.dropped} dup ${s.network.duplicated} timeouts ${s.network.timedOut}; hints ${s.hintsDelivered} read repairs ${s.readRepairs} cap drops ${s.siblingsDropped}; joins ${s.joins} leaves ${s.leaves} handed off ${s.handoffKeys} ae repairs ${s.antiEntropyKeysRepaired}; ${(s.virtualMs / 1000).toFixed(1)} virtual s; trace ${result.traceHash.slice(0, 16)}`;
  const lines = [head, `  ${shape}`, `  ${figures}`];
  for (const violation of result.violations) lines.push(`  violation: ${violation}`);
  if (result.violations.length > 0) lines.push(`  replay: ${result.replay}`);
  return lines.join('\n');
}
