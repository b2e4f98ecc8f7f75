// The house rules (DESIGN.md, "Folders"), checked on the source: each folder is reached only
// through its index.ts, folders import only the folders below them, and no two files import
// each other, however indirectly.
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));

/** Folder → the folders it may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  config: [],
  actors: ['config'],
  'persistence/journal': ['actors', 'config'],
  'persistence/stores': ['persistence/journal', 'actors', 'config'],
  engine: ['persistence/journal', 'actors', 'config'],
  moderation: ['actors', 'config'],
  gateway: ['engine', 'moderation', 'config'],
  cli: [
    'gateway',
    'engine',
    'persistence/journal',
    'persistence/stores',
    'moderation',
    'actors',
    'config',
  ],
};
const FOLDERS = Object.keys(ALLOWED).sort((a, b) => b.length - a.length);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

function folderOf(file: string): string | null {
  return FOLDERS.find((f) => file === f || file.startsWith(`${f}/`)) ?? null;
}

/** The project files a file imports (static and dynamic), as paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    out.push(normalize(join(dirname(file), m[1])).replace(/\.js$/, '.ts'));
  }
  return out;
}

const files = FOLDERS.flatMap((f) => (f.includes('/') ? [] : sources(f)))
  .concat(sources('persistence'))
  .filter((f, i, all) => all.indexOf(f) === i);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

t.test('other folders are reached only through their index.ts', async (t) => {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    for (const target of imports) {
      const to = folderOf(target);
      if (to === null || to === from) continue;
      if (target !== `${to}/index.ts`) bad.push(`${file} → ${target}`);
    }
  }
  t.same(bad, [], 'imports past a face');
});

t.test('folders import only the folders below them', async (t) => {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    if (from === null) continue;
    for (const target of imports) {
      const to = folderOf(target);
      if (to === from || (to !== null && ALLOWED[from].includes(to))) continue;
      // A source file never reaches into bench/, test/ or scripts/: they are not shipped.
      bad.push(`${file} → ${target} (${from} may not import ${to ?? 'outside the source'})`);
    }
  }
  t.same(bad, [], 'arrows that point up or sideways');
});

t.test('no import cycles between files', async (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      const s = state.get(next);
      if (s === 'open')
        cycles.push(
          [...stack.slice(stack.indexOf(next)), next].map((f) => relative('.', f)).join(' → '),
        );
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  t.same(cycles, [], 'cycles');
});
