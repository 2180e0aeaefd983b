#!/usr/bin/env node
// Scans what the web SDK ships (every file in npm/dist, and the tag-manager
// build `threadline.js` wherever it is built) for what a strict Content
// Security Policy or a security review refuses: `eval(`, `new Function`,
// the `Function(...)` constructor, `setTimeout`/`setInterval` with a string,
// `document.write`, script elements created at run time (the SDK never
// injects a script, inline or not), HTML containing `<script` written into
// the page, and http(s) URL literals (no code or data from a third-party
// host; URLs in comments, which are documentation, are allowed).
//
// Before scanning it runs its own fixtures: each rule must flag its bad
// sample and leave the harmless look-alikes alone, so the check cannot pass
// because a pattern broke. Exit 1 with `file:line: rule: excerpt` for each
// finding; exit 2 when there is nothing to scan.
//
//   node scripts/check-web-dist.mjs [extra files or directories...]
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each rule sees the code with comments removed (string literals kept). */
const RULES = [
  { name: 'eval', re: /(^|[^\w$.])eval\s*\(/ },
  { name: 'indirect eval', re: /\(\s*0\s*,\s*eval\s*\)|globalThis\s*\.\s*eval\b|window\s*\.\s*eval\b|\[\s*['"`]eval['"`]\s*\]/ },
  { name: 'new Function', re: /\bnew\s+Function\b/ },
  { name: 'Function constructor', re: /(^|[^\w$.])Function\s*\(|\.constructor\s*\(\s*['"`]/ },
  { name: 'string timer', re: /\bset(Timeout|Interval|Immediate)\s*\(\s*['"`]/ },
  { name: 'document.write', re: /\bdocument\s*\.\s*write(ln)?\b/ },
  { name: 'script element', re: /createElement(NS)?\s*\([^)]*['"`]script['"`]/i },
  { name: 'script markup', re: /<\s*script\b/i },
  // A URL names a host (a bare scheme in a message, `http://`, is no URL).
  { name: 'URL literal', re: /\b(https?:)?\/\/(localhost\b|\[[0-9a-f:]+\]|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}\b|\d+\.\d+\.\d+\.\d+)/i },
];

/**
 * Removes comments from JavaScript source, keeping strings, template
 * literals and regular expressions, and keeping line breaks so line numbers
 * stay right. A small scanner, not a parser: it knows enough to tell a
 * regular expression from a division in generated and compiled code.
 */
export function stripComments(src) {
  let out = '';
  let i = 0;
  let prev = ''; // last significant character outside comments
  const n = src.length;
  const regexAllowed = () => prev === '' || /[(,=:[!&|?{};+\-*%<>~^]/.test(prev) || /\b(return|typeof|case|in|of|void|delete|throw)$/.test(out.trimEnd());
  while (i < n) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < n && src[j] !== c) {
        if (src[j] === '\\') j++;
        else if (c !== '`' && src[j] === '\n') break;
        j++;
      }
      out += src.slice(i, j + 1);
      i = j + 1;
      prev = c;
      continue;
    }
    if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < n && src[j] !== '\n') {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        else if (src[j] === '/' && !inClass) break;
        j++;
      }
      out += src.slice(i, j + 1);
      i = j + 1;
      prev = '/';
      continue;
    }
    out += c;
    if (!/\s/.test(c)) prev = c;
    i++;
  }
  return out;
}

/** Findings in one file's contents: `[{line, rule, text}]`. */
export function scan(name, bytes) {
  const found = [];
  if (/\.wasm$/.test(name)) {
    // The binary's data section holds every string the core can produce.
    const text = bytes.toString('latin1');
    for (const rule of RULES.filter((r) => r.name === 'URL literal' || r.name === 'script markup')) {
      const re = new RegExp(rule.re.source, 'gi');
      for (const m of text.matchAll(re)) found.push({ line: `byte ${m.index}`, rule: rule.name, text: m[0] });
    }
    return found;
  }
  const code = /\.d\.ts$/.test(name) ? '' : stripComments(bytes.toString('utf8'));
  code.split('\n').forEach((line, k) => {
    for (const rule of RULES) {
      const m = line.match(rule.re);
      if (m) found.push({ line: k + 1, rule: rule.name, text: line.trim().slice(Math.max(0, line.trim().indexOf(m[0].trim()) - 40), 160) });
    }
  });
  return found;
}

const BAD = {
  eval: 'const x = eval("1+1");',
  'indirect eval': 'const g = (0, eval)("this");',
  'new Function': 'const f = new Function("a", "return a");',
  'Function constructor': 'const f = Function("return this")();',
  'string timer': 'setTimeout("alert(1)", 10);',
  'document.write': 'document.write("<p>hi</p>");',
  'script element': "const s = document.createElement('script'); s.text = code; document.head.append(s);",
  'script markup': "el.innerHTML = '<script>go()</' + 'script>';",
  'URL literal': "fetch('https://cdn.example.com/core.wasm'); import('//cdn.example.net/x.js');",
};

const GOOD = [
  '// Loaded from https://example.com/docs (a documentation comment)',
  '/* see https://github.com/rustwasm/wasm-bindgen */ const a = 1;',
  'function f(x) { return x; } const g = function(y) { return y; };',
  'page.evaluate(() => 1); retrieval(2); medieval(3);',
  'setTimeout(() => tick(), 10); setInterval(tick, 5);',
  'const re = /https?:\\/\\/ is matched by a regex, not a URL/; const h = a / b / c;',
  "const u = new URL('./sdk_wasm_bg.wasm', import.meta.url);",
  "const s = 'a // not a comment'; const t = 1; // https://docs.example/x",
  "throw new TypeError('rules.url must start with https:// or http://');",
  'x.prototype.constructor === Function.prototype.constructor;',
];

/** Every rule catches its sample; nothing harmless is flagged. */
export function selfTest() {
  const problems = [];
  for (const rule of RULES) {
    const sample = BAD[rule.name];
    if (!sample) {
      problems.push(`rule "${rule.name}" has no failing fixture`);
      continue;
    }
    if (!scan('fixture.js', Buffer.from(sample)).some((f) => f.rule === rule.name)) {
      problems.push(`rule "${rule.name}" missed its fixture: ${sample}`);
    }
  }
  for (const sample of GOOD) {
    const f = scan('fixture.js', Buffer.from(sample));
    if (f.length) problems.push(`harmless fixture flagged (${f.map((x) => x.rule).join(', ')}): ${sample}`);
  }
  const wasm = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.from('\x00see http://tracker.example/p\x00')]);
  if (!scan('core.wasm', wasm).some((f) => f.rule === 'URL literal')) problems.push('URL in a .wasm data section missed');
  return problems;
}

function filesUnder(path) {
  if (!existsSync(path)) return [];
  if (statSync(path).isFile()) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((e) => filesUnder(join(path, e.name)));
}

function main() {
  const problems = selfTest();
  if (problems.length) {
    console.error(`check-web-dist: the scanner's self-test failed:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  const args = process.argv.slice(2);
  const targets = args.length ? args : [join(ROOT, 'npm', 'dist')];
  if (!args.length) {
    // The tag-manager build, wherever it is built.
    for (const p of ['npm/dist/threadline.js', 'npm/iife/threadline.js', 'dist/threadline.js']) {
      const f = join(ROOT, p);
      if (existsSync(f) && !f.startsWith(targets[0])) targets.push(f);
    }
  }
  const files = targets.flatMap(filesUnder).filter((f) => /\.(m?js|cjs|wasm)$/.test(f) && !/\.d\.ts$/.test(f));
  if (!files.length) {
    console.error(`check-web-dist: nothing to scan in ${targets.join(', ')} (build npm/dist with npm/scripts/build.sh)`);
    process.exit(2);
  }
  let bad = 0;
  for (const f of files) {
    for (const x of scan(f, readFileSync(f))) {
      bad++;
      console.error(`${relative(ROOT, f)}:${x.line}: ${x.rule}: ${x.text}`);
    }
  }
  if (bad) {
    console.error(`check-web-dist: ${bad} finding(s) in the shipped files`);
    process.exit(1);
  }
  console.log(`check-web-dist: ${files.length} shipped files clean (${files.map((f) => relative(ROOT, f)).join(', ')})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
