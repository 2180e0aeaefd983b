// The local "sink": one tiny HTTP server per SDK and phase, on 127.0.0.1.
// It serves the benchmark page (cross-origin isolated, so performance.now()
// has 5 µs resolution), the harness, the SDK's files, answers the SDK's
// settings/config requests (through the adapter) and answers 200 to every
// other request, recording what arrived: requests, bytes as received on the
// wire (compressed bodies count compressed), and the distinct benchmark
// events found in the bodies, whatever the peer's wire format.
import { createServer } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { brotliDecompressSync, gunzipSync, inflateSync, inflateRawSync } from 'node:zlib';

const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
};

const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/** Every benchmark event carries `bench_seq: "bq<run>n<seq>z"`. */
export const MARKER = /bq([a-z0-9]+)n(\d+)z/g;

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function inflate(buf, encoding) {
  const tries = [];
  if (buf.length > 2 && buf[0] === 0x1f && buf[1] === 0x8b) tries.push(gunzipSync);
  if (encoding === 'br') tries.push(brotliDecompressSync);
  if (encoding === 'deflate') tries.push(inflateSync, inflateRawSync);
  if (encoding === 'gzip') tries.push(gunzipSync);
  for (const f of tries) {
    try {
      return f(buf);
    } catch {}
  }
  return buf;
}

/**
 * All the text a request carries, decoded the ways the peers encode it:
 * gzip/deflate/brotli bodies, URL-encoded forms and query strings, and
 * base64 (standard or URL-safe) fields such as Snowplow's `ue_px` or
 * Mixpanel's `data=`, one level deep inside the decoded text.
 */
export function decodedTexts(url, body, encoding) {
  const raw = inflate(body, encoding).toString('utf8');
  const texts = new Set([url, safeDecode(url), raw, safeDecode(raw), safeDecode(raw.replace(/\+/g, ' '))]);
  for (const t of [...texts]) {
    for (const m of t.matchAll(/[A-Za-z0-9+/_-]{24,}={0,2}/g)) {
      const b64 = m[0].replace(/-/g, '+').replace(/_/g, '/');
      const dec = Buffer.from(b64, 'base64');
      const inner = inflate(dec).toString('utf8');
      if (inner.includes('bq')) texts.add(inner);
    }
  }
  return [...texts];
}

/**
 * @param {object} o
 * @param {object} o.adapter the SDK's adapter (static dirs, page setup, responses)
 * @param {string} o.harness the page-side harness source
 */
export async function startSink({ adapter, harness }) {
  const stats = {
    requests: 0,
    bodyBytes: 0,
    headerBytes: 0,
    byPath: {},
    seqs: new Set(),
    occurrences: 0,
    lastRequestAt: 0,
    served: new Map(), // SDK file path -> bytes, for the size figures
  };
  let origin = '';
  const page = () => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tailored Silk Slacks – Northwind</title>
<script>window.__setup = ({ ${adapter.setup.toString()} }).setup;</script>
<script src="/harness.js"></script>
</head><body><h1>Tailored Silk Slacks</h1><p>Peer benchmark page (${adapter.name}).</p></body></html>`;

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, origin);
      const send = (status, type, data, extra = {}) => {
        res.writeHead(status, {
          'content-type': type,
          'cache-control': 'no-store',
          'cross-origin-resource-policy': 'same-origin',
          'access-control-allow-origin': req.headers.origin || '*',
          'access-control-allow-credentials': 'true',
          'access-control-allow-headers': req.headers['access-control-request-headers'] || '*',
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          ...extra,
        });
        res.end(data);
      };
      if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
        return send(200, TYPES['.html'], page(), ISOLATION);
      }
      if (req.method === 'GET' && url.pathname === '/harness.js') return send(200, TYPES['.js'], harness);
      if (req.method === 'GET' && url.pathname === '/favicon.ico') return send(404, 'text/plain', '');
      for (const [prefix, target] of Object.entries(adapter.static ?? {})) {
        if (!url.pathname.startsWith(prefix)) continue;
        // A prefix ending in '/' maps a directory, otherwise one file.
        const file = prefix.endsWith('/')
          ? normalize(join(target, url.pathname.slice(prefix.length)))
          : target;
        if (prefix.endsWith('/') && !file.startsWith(normalize(target))) return send(403, 'text/plain', '');
        try {
          if (!statSync(file).isFile()) throw new Error('not a file');
          const data = readFileSync(file);
          stats.served.set(file, data.length);
          return send(200, TYPES[extname(file)] ?? 'application/octet-stream', data);
        } catch {
          return send(404, 'text/plain', 'not found');
        }
      }
      // Anything else is the SDK talking to its back end: record it.
      if (req.method !== 'OPTIONS') {
        stats.requests += 1;
        stats.bodyBytes += body.length;
        let h = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`.length + 2;
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          h += req.rawHeaders[i].length + 2 + req.rawHeaders[i + 1].length + 2;
        }
        stats.headerBytes += h;
        const key = `${req.method} ${url.pathname}`;
        stats.byPath[key] = (stats.byPath[key] ?? 0) + 1;
        stats.lastRequestAt = Date.now();
        const found = new Set();
        for (const t of decodedTexts(req.url, body, req.headers['content-encoding'])) {
          for (const m of t.matchAll(MARKER)) found.add(`${m[1]}:${m[2]}`);
        }
        stats.occurrences += found.size;
        for (const f of found) stats.seqs.add(f);
      }
      const custom = adapter.respond?.(req.method, url, { origin, body });
      if (custom) return send(custom.status ?? 200, custom.type ?? TYPES['.json'], custom.body ?? '');
      if (req.method === 'OPTIONS') return send(204, 'text/plain', '');
      return send(200, TYPES['.json'], '{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    url: origin,
    stats,
    snapshot: () => ({
      requests: stats.requests,
      bodyBytes: stats.bodyBytes,
      headerBytes: stats.headerBytes,
      delivered: stats.seqs.size,
      occurrences: stats.occurrences,
    }),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
