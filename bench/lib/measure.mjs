// Shared by the benchmarks. What a result was measured on: CPU model, cores, Node, and the
// commit (marked +dirty when the SDK's sources differ from it). Shared by
// bench/browser and bench/peers so both report the machine the same way.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zc, gzipSync } from 'node:zlib';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function machine() {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch {}
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {}
  let commit = null;
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'sdk-core', 'sdk-wasm', 'npm/src'], {
      encoding: 'utf8',
    }).trim();
    if (dirty) commit += '+dirty';
  } catch {}
  return { cpu, nproc, node: process.version, commit };
}

/** Raw, gzip -9 and brotli 11 sizes of one file's bytes, as the benchmarks report them. */
export function compressedSizes(buf, name) {
  return {
    raw: buf.length,
    gzip9: gzipSync(buf, { level: 9 }).length,
    brotli11: brotliCompressSync(buf, {
      params: {
        [zc.BROTLI_PARAM_QUALITY]: 11,
        [zc.BROTLI_PARAM_SIZE_HINT]: buf.length,
        [zc.BROTLI_PARAM_MODE]: /\.(m?js|json|css|html)$/.test(name) ? zc.BROTLI_MODE_TEXT : zc.BROTLI_MODE_GENERIC,
      },
    }).length,
  };
}
