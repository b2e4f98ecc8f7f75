import t from 'tap';
import fc from 'fast-check';
import { ByteMap } from '../../actors/index.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

t.test('behaves like a Map<string, number> under random inserts and lookups', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.integer()), { maxLength: 400 }),
      (ops) => {
        const m = new ByteMap(2);
        const ref = new Map<string, number>();
        for (const [k, v] of ops) {
          const b = enc(k);
          const e = m.find(b, 0, b.length);
          if (ref.has(k) !== e >= 0) throw new Error(`find(${k}) disagrees`);
          if (e >= 0) {
            if (m.value(e) !== ref.get(k)) throw new Error('value differs');
            m.setValue(e, v);
          } else {
            // Alternate the two insert paths: after a missed find, and cold.
            const ne =
              v % 2 === 0 ? m.insertMissed(b, 0, b.length, v) : m.insert(b, 0, b.length, v);
            if (m.refString(m.ref(ne)) !== k) throw new Error('key round trip');
          }
          ref.set(k, v);
        }
        if (m.size !== ref.size) throw new Error('size differs');
        for (const [k, v] of ref) {
          const b = enc(k);
          const e = m.find(b, 0, b.length);
          if (e < 0 || m.value(e) !== v) throw new Error(`lost ${k}`);
        }
      },
    ),
    { numRuns: 200, seed: 7 },
  );
  t.pass('matches Map');
});

t.test('insertMissed refuses to run without a missed find', async (t) => {
  const m = new ByteMap();
  const a = enc('a');
  m.find(a, 0, 1);
  m.insertMissed(a, 0, 1, 1);
  t.throws(() => m.insertMissed(a, 0, 1, 1), /without a missed find/);
  t.throws(() => m.insert(a, 0, 1, 2), /present key/);
});

t.test('keys are compared by bytes, not by hash alone', async (t) => {
  const m = new ByteMap();
  for (let i = 0; i < 50_000; i++) {
    const b = enc(`user-${i}`);
    m.insert(b, 0, b.length, i);
  }
  for (let i = 0; i < 50_000; i += 997) {
    const b = enc(`user-${i}`);
    t.equal(m.value(m.find(b, 0, b.length)), i);
  }
  const missing = enc('user-50000');
  t.equal(m.find(missing, 0, missing.length), -1);
});
