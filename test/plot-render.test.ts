import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { crc32, encodePng, formatNumber, heatmapPng, heatmapSvg, linePlotPng, linePlotRaster, linePlotSvg, niceTicks, type LinePlot } from '../src/eval/plot.js';

/** Parse a PNG: check the signature and every chunk's CRC; return IHDR fields and the inflated image data. */
function decodePng(png: Uint8Array): { width: number; height: number; bitDepth: number; colorType: number; raw: Buffer; chunks: string[] } {
  assert.deepEqual(Array.from(png.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: string[] = [];
  const idat: Uint8Array[] = [];
  let ihdr: Uint8Array | null = null;
  for (let o = 8; o < png.length;) {
    const len = view.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    assert.equal(view.getUint32(o + 8 + len), crc32(png.subarray(o + 4, o + 8 + len)), `CRC of ${type}`);
    chunks.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    o += 12 + len;
  }
  assert.ok(ihdr, 'IHDR present');
  const h = new DataView(ihdr.buffer, ihdr.byteOffset, 13);
  return {
    width: h.getUint32(0), height: h.getUint32(4), bitDepth: ihdr[8]!, colorType: ihdr[9]!,
    raw: inflateSync(Buffer.concat(idat)), chunks,
  };
}

const plot: LinePlot = {
  title: 'Copying: loss vs gap', xLabel: 'gap (tokens)', yLabel: 'loss',
  series: [
    { name: 'teacher (softmax)', x: [0, 8, 32, 128], y: [1, 1.5, 2, 2.2] },
    { name: 'SUPRA', x: [0, 8, 32, 128], y: [1.2, 2.5, NaN, 4] },
  ],
  hline: { y: 3, label: 'chance' },
};

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('a line plot PNG decodes: signature, IHDR size, CRCs, and IDAT inflating to the scanline bytes', () => {
  const png = linePlotPng(plot);
  const d = decodePng(png);
  assert.deepEqual(d.chunks, ['IHDR', 'IDAT', 'IEND']);
  assert.equal(d.width, 1280);
  assert.equal(d.height, 800);
  assert.equal(d.bitDepth, 8);
  assert.equal(d.colorType, 6);
  assert.equal(d.raw.length, d.height * (1 + 4 * d.width));
  // every scanline uses filter 0 and the pixels are what the rasterizer drew
  const r = linePlotRaster(plot);
  for (let y = 0; y < d.height; y++) {
    assert.equal(d.raw[y * (1 + 4 * d.width)], 0);
  }
  assert.ok(Buffer.from(r.data).equals(Buffer.concat(Array.from({ length: d.height }, (_, y) => d.raw.subarray(y * (1 + 4 * d.width) + 1, (y + 1) * (1 + 4 * d.width))))));
  // something was drawn in each series colour (blue and orange) and the background is white
  const has = (rgb: number[]) => {
    for (let i = 0; i < r.data.length; i += 4) if (r.data[i] === rgb[0] && r.data[i + 1] === rgb[1] && r.data[i + 2] === rgb[2]) return true;
    return false;
  };
  assert.ok(has([0x1f, 0x6f, 0xb4]) && has([0xf0, 0x7f, 0x10]) && has([255, 255, 255]));
});

test('encodePng round-trips a small raster exactly', () => {
  const data = new Uint8Array(3 * 2 * 4).map((_, i) => (i * 37) & 255);
  const d = decodePng(encodePng({ width: 3, height: 2, data }));
  assert.equal(d.width, 3);
  assert.equal(d.height, 2);
  assert.deepEqual(Array.from(d.raw), [0, ...data.subarray(0, 12), 0, ...data.subarray(12)]);
  assert.throws(() => encodePng({ width: 3, height: 3, data }), /bytes for 3×3/);
});

test('the line plot SVG is well-formed and holds every series, label and the legend', () => {
  const svg = linePlotSvg(plot);
  assert.match(svg, /^<\?xml[^>]*\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  // tags balance: every element is self-closed except <svg> and <text>
  const opens = (svg.match(/<(svg|text)\b/g) ?? []).length;
  const closes = (svg.match(/<\/(svg|text)>/g) ?? []).length;
  assert.equal(opens, closes);
  for (const tag of svg.match(/<(rect|polyline)\b[^>]*>/g) ?? []) assert.ok(tag.endsWith('/>'), tag);
  for (const s of ['teacher (softmax)', 'SUPRA', 'Copying: loss vs gap', 'gap (tokens)', 'chance']) assert.ok(svg.includes(`>${s}</text>`), s);
  // one polyline per series colour; SUPRA's NaN splits its line in two
  assert.equal((svg.match(/stroke="#1f6fb4" stroke-width="2"/g) ?? []).length, 2); // data line + legend sample
  assert.equal((svg.match(/stroke="#f07f10" stroke-width="2"/g) ?? []).length, 2); // the run before the NaN (2 points) + legend; a lone point is a marker only
  assert.ok(!svg.includes('NaN'));
});

test('a vertical reference line: drawn dashed from the bottom to the top of the plot, in the legend, the x range stretched to it', () => {
  const svg = (vline?: LinePlot['vline']) => linePlotSvg({ ...plot, hline: undefined, xLog: true, series: plot.series.map((s) => ({ ...s, x: s.x.map((x) => x + 1) })), vline });
  const marked = svg({ x: 256, label: 'training length' });
  assert.ok(marked.includes('>training length</text>'));
  const lines = [...marked.matchAll(/<polyline points="([\d.]+),([\d.]+) ([\d.]+),([\d.]+)" fill="none" stroke="#5a5a5a"[^>]*stroke-dasharray/g)];
  assert.equal(lines.length, 2, 'the line and its legend sample');
  const [x0, y0, x1, y1] = lines[0]!.slice(1).map(Number);
  assert.ok(x0 === x1 && y1! - y0! > 200, 'vertical, across the plot');
  // 256 lies past every point (the gaps end at 129): the axis reaches it, so a tick at 200 appears only with the line
  assert.ok(marked.includes('>200</text>') && !svg().includes('>200</text>'));
});

test('a heatmap renders to PNG and SVG with its values and colour bar', () => {
  const h = { title: 'cos', xLabel: 'head', yLabel: 'layer', values: [[0.1, 0.9], [NaN, 0.5]], rowLabels: ['L0', 'L1'], vmin: 0, vmax: 1 };
  const d = decodePng(heatmapPng(h));
  assert.equal(d.raw.length, d.height * (1 + 4 * d.width));
  const svg = heatmapSvg(h);
  for (const s of ['0.10', '0.90', '0.50', 'nan', 'L0', 'L1', 'cos']) assert.ok(svg.includes(`>${s}</text>`), s);
  assert.throws(() => heatmapSvg({ ...h, values: [[1, 2], [3]] }), /row 1 has 1 values/);
});

test('ticks are nice and cover the range; numbers format briefly', () => {
  assert.deepEqual(niceTicks(0, 512), [0, 100, 200, 300, 400, 500]);
  const t = niceTicks(0, 1);
  assert.equal(t.length, 6);
  t.forEach((v, i) => assert.ok(Math.abs(v - 0.2 * i) < 1e-12, String(v)));
  assert.deepEqual(niceTicks(-3, 7), [-2, 0, 2, 4, 6]);
  assert.equal(formatNumber(0.30000000000000004), '0.3');
  assert.equal(formatNumber(512), '512');
  assert.equal(formatNumber(1e-5), '1.0e-5');
});
