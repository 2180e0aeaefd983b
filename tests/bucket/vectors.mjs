// Bucketing test vectors from an independent MurmurHash3 implementation
// (murmurhash3js-revisited, which hashes bytes like the reference C++):
// prints JSON lines {"experiment", "device", "hash", "bucket"} for fixed
// and seeded-random ids, ASCII and not (accents, CJK, emoji, NUL, lone
// surrogates are not valid UTF-8 strings and are left out). Read by
// sdk-core/tests/bucket_differential.rs.
import mmh3 from 'murmurhash3js-revisited';

const fixed = [
  ['', ''],
  ['hero', '3f1c2b7e-8d4a-4c55-9a7e-0f6b2d1e9c44'],
  ['hero-banner-2026', 'd1'],
  ['exp.with.dots', 'device.with.dots'],
  ['café', 'Zoë'],
  ['促销', '设备-42'],
  ['🧵', '👖👖'],
  ['x'.repeat(300), 'y'.repeat(1000)],
];
let state = Number(process.env.BUCKET_SEED ?? 20261124) >>> 0;
const rnd = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const alphabet = [...'abcXYZ019-_.', 'é', 'ß', 'ñ', '中', '文', 'ア', '😀', '🧵', '\u0000', ' '];
const word = () => Array.from({ length: Math.floor(rnd() * 40) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
const cases = [...fixed];
for (let i = 0; i < 2000; i++) cases.push([word(), rnd() < 0.5 ? crypto.randomUUID() : word()]);

for (const [experiment, device] of cases) {
  const h = mmh3.x86.hash32(Buffer.from(`${experiment}.${device}`, 'utf8'), 0) >>> 0;
  const bucket = Number((BigInt(h) * 10000n) >> 32n);
  process.stdout.write(JSON.stringify({ experiment, device, hash: h, bucket }) + '\n');
}
