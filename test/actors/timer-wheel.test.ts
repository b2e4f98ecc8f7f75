import t from 'tap';
import { TimerWheel } from '../../actors/index.js';

// A tiny owner: deadlines per (actor, reservation), and which ones are still held.
function owner() {
  const deadlines = new Map<string, number>();
  const held = new Set<string>();
  const fired: string[] = [];
  const visit = (now: number) => (a: number, r: number) => {
    const k = `${a}/${r}`;
    if (held.has(k) && deadlines.get(k)! > now) return false;
    if (held.delete(k)) fired.push(k);
    return true;
  };
  const add = (w: TimerWheel, a: number, r: number, d: number) => {
    deadlines.set(`${a}/${r}`, d);
    held.add(`${a}/${r}`);
    w.schedule(a, r, d);
  };
  return { visit, add, held, fired };
}

t.test('entries fire at the first tick at or after their deadline, never before', async (t) => {
  const w = new TimerWheel(100, 8, 0);
  const o = owner();
  o.add(w, 1, 1, 250);
  o.add(w, 1, 2, 120);
  o.add(w, 2, 1, 900);
  w.advance(199, o.visit(199));
  t.same(o.fired, [], 'a coarse wheel: the 120 ms entry waits for the 200 ms tick');
  w.advance(200, o.visit(200));
  t.same(o.fired, ['1/2']);
  w.advance(249, o.visit(249));
  t.same(o.fired, ['1/2'], 'the 250 entry waits although its slot was visited');
  w.advance(300, o.visit(300));
  t.same(o.fired, ['1/2', '1/1']);
  t.equal(w.size, 1);
});

t.test('entries more than one revolution out survive the revolutions before them', async (t) => {
  const w = new TimerWheel(10, 4, 0); // one revolution = 40 ms
  const o = owner();
  o.add(w, 0, 1, 135);
  for (let now = 0; now < 130; now += 10) w.advance(now, o.visit(now));
  t.same(o.fired, []);
  w.advance(140, o.visit(140));
  t.same(o.fired, ['0/1']);
});

t.test(
  'a long pause fires everything due in one call; released holds are dropped silently',
  async (t) => {
    const w = new TimerWheel(10, 16, 0);
    const o = owner();
    for (let r = 1; r <= 100; r++) o.add(w, 0, r, r * 7);
    o.held.delete('0/50'); // confirmed meanwhile
    w.advance(10_000, o.visit(10_000));
    t.equal(o.fired.length, 99);
    t.equal(w.size, 0);
  },
);

t.test('an entry scheduled in the past fires on the next advance', async (t) => {
  const w = new TimerWheel(100, 8, 1_000);
  const o = owner();
  w.advance(1_000, o.visit(1_000));
  o.add(w, 3, 3, 500);
  w.advance(1_000, o.visit(1_000));
  t.same(o.fired, []);
  w.advance(1_100, o.visit(1_100));
  t.same(o.fired, ['3/3']);
});
