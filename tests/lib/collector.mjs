// Starts the reference collector (the debug binary cargo built) on a free
// port and returns its URL plus helpers to read /stats and /events.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function binary() {
  if (process.env.THREADLINE_COLLECTOR) return process.env.THREADLINE_COLLECTOR;
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  return join(target, 'debug', 'threadline-collector');
}

/**
 * @param {string[]} args extra flags, e.g. ['--fail-rate', '0.3']
 * @param {{adminToken?: string}} [options] `adminToken` starts it with `--admin-token`; the
 *   helpers below then send it, and `admin(path, init)` calls any admin route with it.
 * @returns {Promise<{url: string, stats: () => Promise<any>, events: (q?: string) => Promise<any[]>,
 *   faults: (f: object) => Promise<any>, admin: (path: string, init?: RequestInit) => Promise<any>, stop: () => Promise<void>}>}
 */
export async function startCollector(args = [], { adminToken } = {}) {
  if (adminToken) args = [...args, '--admin-token', adminToken];
  const dir = mkdtempSync(join(tmpdir(), 'threadline-collector-'));
  const child = spawn(
    binary(),
    ['--port', '0', '--fresh', '--db', join(dir, 'events.sqlite'), '--npm-dir', join(ROOT, 'npm'), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${stderr}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`collector exited (${code}): ${stderr}`)));
  });
  const json = async (path, init = {}) => {
    const headers = { ...init.headers, ...(adminToken && path.startsWith('/admin') ? { authorization: `Bearer ${adminToken}` } : {}) };
    const r = await fetch(url + path, { ...init, headers });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  };
  return {
    url,
    stats: () => json('/stats'),
    events: (q = '') => json('/events' + (q ? `?${q}` : '')),
    admin: (path, init) => json(path, init),
    faults: (f) => json('/admin/faults', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(f) }),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function waitFor(check, ms = 30000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
