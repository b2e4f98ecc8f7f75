// How partitions are spread over the members of a cluster (no broker needed).
import t from 'tap';
import { assignPartitions } from '../../persistence/journal/index.js';

const member = (nodeId: string, owned: number[] = []) => ({
  memberId: `m-${nodeId}`,
  nodeId,
  owned,
});

function counts(owners: (string | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of owners) out[String(o)] = (out[String(o)] ?? 0) + 1;
  return out;
}

t.test('every partition has exactly one owner, and counts differ by at most one', async (t) => {
  for (const n of [1, 2, 3, 5, 8, 9]) {
    for (const partitions of [1, 2, 7, 8, 16]) {
      const members = Array.from({ length: n }, (_, i) => member(`n${i}`));
      const owners = assignPartitions(members, partitions);
      t.equal(owners.length, partitions);
      t.ok(
        owners.every((o) => o !== null),
        `${n} members, ${partitions} partitions: all owned`,
      );
      const c = Object.values(counts(owners));
      const spread = Math.max(...c) - (c.length < n ? 0 : Math.min(...c));
      t.ok(
        spread <= 1,
        `${n} members, ${partitions} partitions: ${JSON.stringify(counts(owners))}`,
      );
    }
  }
});

t.test('a member that joins takes only its share; the others keep theirs', async (t) => {
  const two = assignPartitions([member('a'), member('b')], 8);
  const ownedBy = (owners: (string | null)[], id: string) =>
    owners.flatMap((o, p) => (o === id ? [p] : []));
  const three = assignPartitions(
    [member('a', ownedBy(two, 'm-a')), member('b', ownedBy(two, 'm-b')), member('c')],
    8,
  );
  const moved = three.filter((o, p) => o !== two[p]);
  t.equal(moved.length, 2, `8 partitions over 3: only the newcomer's 2 move (${three.join()})`);
  t.ok(
    moved.every((o) => o === 'm-c'),
    'and they move to the newcomer',
  );
});

t.test('a member that leaves: only its partitions move', async (t) => {
  const three = assignPartitions([member('a'), member('b'), member('c')], 9);
  const ownedBy = (id: string) => three.flatMap((o, p) => (o === id ? [p] : []));
  const two = assignPartitions([member('a', ownedBy('m-a')), member('c', ownedBy('m-c'))], 9);
  for (let p = 0; p < 9; p++) {
    if (three[p] !== 'm-b') t.equal(two[p], three[p], `partition ${p} stays with ${three[p]}`);
  }
});

t.test(
  'the same members give the same map, in any order; stale claims are cut to size',
  async (t) => {
    const ms = [member('b', [0, 1, 2, 3]), member('a', [0, 1, 2, 3]), member('c')];
    t.same(assignPartitions(ms, 4), assignPartitions([...ms].reverse(), 4));
    const owners = assignPartitions(ms, 4);
    t.ok(
      Object.values(counts(owners)).every((n) => n <= 2),
      'nobody keeps more than its share',
    );
    t.same(assignPartitions([], 3), [null, null, null], 'no members: no owners');
  },
);
