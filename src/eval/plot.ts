// A small dependency-free plotting module: line plots (several series, axes, ticks, legend, title) and
// heatmaps with a colour bar. A plot is first laid out as a list of shapes in "units" (a logical
// canvas of width × height), then either written as SVG text or rasterized into an RGBA buffer (lines,
// rectangles, and text in a built-in 5×7 bitmap font) and encoded as PNG with node:zlib's deflate.
import { deflateSync } from 'node:zlib';
import { crc32 } from '../io/zip.js';

// ---------------------------------------------------------------- public types

export interface Series {
  name: string;
  x: readonly number[];
  y: readonly number[];
  /** '#rrggbb'; default: the next colour of the palette. */
  color?: string;
}

export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Logical size in units (PNG pixels = units × pixelScale). Default 640 × 400. */
  width?: number;
  height?: number;
  /** Fixed y range; default: the data's range (NaN / ±Infinity points are skipped). */
  yMin?: number;
  yMax?: number;
  /** A horizontal reference line (e.g. chance level), drawn dashed. */
  hline?: { y: number; label: string };
  /** A vertical reference line (e.g. the training length), drawn dashed; the x range stretches to hold it. */
  vline?: { x: number; label: string };
  /** Logarithmic axes (ticks at 1, 2, 5 × 10^k); values ≤ 0 are skipped like NaN. */
  xLog?: boolean;
  yLog?: boolean;
}

export interface Heatmap {
  title: string;
  xLabel: string;
  yLabel: string;
  /** values[row][col]; NaN cells are drawn grey. Row 0 is drawn at the top. */
  values: number[][];
  rowLabels?: string[];
  colLabels?: string[];
  /** Colour range; default: the data's min and max. */
  vmin?: number;
  vmax?: number;
  /** Write each cell's value in it (default: when the cells are large enough). */
  annotate?: boolean;
  width?: number;
  height?: number;
}

/** An RGBA raster: width × height pixels, 4 bytes each, row-major from the top-left. */
export interface Raster {
  width: number;
  height: number;
  data: Uint8Array;
}

// ---------------------------------------------------------------- shapes (the layout)

type RGB = [number, number, number];

type Shape =
  | { kind: 'rect'; x: number; y: number; w: number; h: number; fill: RGB | null; stroke: RGB | null }
  | { kind: 'line'; points: Array<[number, number]>; color: RGB; width: number; dashed: boolean }
  | { kind: 'text'; x: number; y: number; text: string; size: 'small' | 'large'; anchor: 'start' | 'middle' | 'end'; color: RGB; vertical: boolean };

interface Scene {
  width: number;
  height: number;
  shapes: Shape[];
}

const BLACK: RGB = [0, 0, 0];
const WHITE: RGB = [255, 255, 255];
const GRID: RGB = [225, 225, 225];
const GREY: RGB = [150, 150, 150];
// the vertical reference line: darker than the horizontal one, so a plot can hold both
const VLINE: RGB = [90, 90, 90];

// Distinct line colours (blue, orange, green, red, purple, brown, pink, olive).
const PALETTE = ['#1f6fb4', '#f07f10', '#2a9d3a', '#d42a2a', '#8a5cc0', '#8c564b', '#d965b8', '#9a9a20'];

// Text sizes in units: character advance and glyph height. They match the bitmap font at pixel scale 2
// (small: font scale 2 → 12 px advance = 6 units; large: font scale 3 → 9 units), and SVG font sizes
// chosen so that a sans-serif of that size has about the same width.
const TEXT = {
  small: { advance: 6, height: 7, svgSize: 10.5, fontScale: 1 },
  large: { advance: 9, height: 10.5, svgSize: 15, fontScale: 1.5 },
} as const;

function parseColor(c: string): RGB {
  const m = /^#([0-9a-f]{6})$/i.exec(c);
  if (!m) throw new Error(`supra: plot: colour must be '#rrggbb', got '${c}'`);
  const v = parseInt(m[1]!, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function hex(c: RGB): string {
  return '#' + c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
}

/** Roughly 5 "nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  // the 1/2/5 step whose tick count is closest to the target
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (Math.abs((hi - lo) / b - target) < Math.abs((hi - lo) / a - target) ? b : a));
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

/** A short label for a tick or cell value. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(3)));
}

function textWidth(text: string, size: 'small' | 'large'): number {
  return text.length * TEXT[size].advance;
}

// ---------------------------------------------------------------- layout: line plot

function finiteRange(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** Ticks of a log axis over [10^lo, 10^hi] in log10 units: 1, 2, 5 × 10^k (every decade when that is too many). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const mantissas = hi - lo > 4 ? [1] : [1, 2, 5];
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const m of mantissas) {
      const t = k + Math.log10(m);
      if (t >= lo - 1e-9 && t <= hi + 1e-9) out.push(t);
    }
  }
  return out.length >= 2 ? out : niceTicks(lo, hi);
}

/** A plot on log axes as the same plot on linear axes of log10 values (the tick labels undo it). */
function toLogAxes(p: LinePlot): LinePlot {
  const lg = (v: number) => (v > 0 ? Math.log10(v) : NaN);
  return {
    ...p,
    series: p.series.map((s) => ({ ...s, x: p.xLog ? s.x.map(lg) : s.x, y: p.yLog ? s.y.map(lg) : s.y })),
    yMin: p.yLog && p.yMin !== undefined ? lg(p.yMin) : p.yMin,
    yMax: p.yLog && p.yMax !== undefined ? lg(p.yMax) : p.yMax,
    hline: p.hline && p.yLog ? { ...p.hline, y: lg(p.hline.y) } : p.hline,
    vline: p.vline && p.xLog ? { ...p.vline, x: lg(p.vline.x) } : p.vline,
  };
}

function layoutLinePlot(plot: LinePlot): Scene {
  const width = plot.width ?? 640, height = plot.height ?? 400;
  if (plot.series.length === 0) throw new Error(`supra: plot '${plot.title}': no series to draw`);
  for (const s of plot.series) {
    if (s.x.length !== s.y.length) throw new Error(`supra: plot '${plot.title}': series '${s.name}' has ${s.x.length} x values and ${s.y.length} y values`);
  }
  const p = plot.xLog || plot.yLog ? toLogAxes(plot) : plot;
  const xTicks = (lo: number, hi: number) => (p.xLog ? logTicks(lo, hi) : niceTicks(lo, hi));
  const yTicks = (lo: number, hi: number) => (p.yLog ? logTicks(lo, hi) : niceTicks(lo, hi));
  const xText = (t: number) => formatNumber(p.xLog ? Number((10 ** t).toPrecision(6)) : t);
  const yText = (t: number) => formatNumber(p.yLog ? Number((10 ** t).toPrecision(6)) : t);
  const shapes: Shape[] = [{ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: WHITE, stroke: null }];
  // plot area: room for the title above, tick labels and axis labels left and below
  const left = 70, right = 20, top = 40, bottom = 50;
  const pw = width - left - right, ph = height - top - bottom;
  let [x0, x1] = finiteRange([...p.series.flatMap((s) => s.x), ...(p.vline ? [p.vline.x] : [])]);
  let [y0, y1] = finiteRange([...p.series.flatMap((s) => s.y), ...(p.hline ? [p.hline.y] : [])]);
  if (p.yMin !== undefined) y0 = p.yMin;
  if (p.yMax !== undefined) y1 = p.yMax;
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  if (p.yMin === undefined || p.yMax === undefined) {
    const pad = 0.05 * (y1 - y0);
    if (p.yMin === undefined) y0 -= pad;
    if (p.yMax === undefined) y1 += pad;
  }
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => top + ph - ((y - y0) / (y1 - y0)) * ph;

  // grid and ticks
  for (const t of xTicks(x0, x1)) {
    const x = sx(t);
    shapes.push({ kind: 'line', points: [[x, top], [x, top + ph]], color: GRID, width: 1, dashed: false });
    shapes.push({ kind: 'line', points: [[x, top + ph], [x, top + ph + 4]], color: BLACK, width: 1, dashed: false });
    shapes.push({ kind: 'text', x, y: top + ph + 13, text: xText(t), size: 'small', anchor: 'middle', color: BLACK, vertical: false });
  }
  for (const t of yTicks(y0, y1)) {
    const y = sy(t);
    shapes.push({ kind: 'line', points: [[left, y], [left + pw, y]], color: GRID, width: 1, dashed: false });
    shapes.push({ kind: 'line', points: [[left - 4, y], [left, y]], color: BLACK, width: 1, dashed: false });
    shapes.push({ kind: 'text', x: left - 7, y, text: yText(t), size: 'small', anchor: 'end', color: BLACK, vertical: false });
  }
  shapes.push({ kind: 'rect', x: left, y: top, w: pw, h: ph, fill: null, stroke: BLACK });
  if (p.hline && Number.isFinite(p.hline.y) && p.hline.y >= y0 && p.hline.y <= y1) {
    const y = sy(p.hline.y);
    shapes.push({ kind: 'line', points: [[left, y], [left + pw, y]], color: GREY, width: 1.5, dashed: true });
  }
  if (p.vline && Number.isFinite(p.vline.x)) {
    const x = sx(p.vline.x);
    shapes.push({ kind: 'line', points: [[x, top], [x, top + ph]], color: VLINE, width: 1.5, dashed: true });
  }

  // series: polylines through finite points (a gap breaks the line), square markers
  p.series.forEach((s, i) => {
    const color = parseColor(s.color ?? PALETTE[i % PALETTE.length]!);
    let run: Array<[number, number]> = [];
    const flush = () => {
      if (run.length > 1) shapes.push({ kind: 'line', points: run, color, width: 2, dashed: false });
      run = [];
    };
    for (let j = 0; j < s.x.length; j++) {
      const x = s.x[j]!, y = s.y[j]!;
      if (!Number.isFinite(x) || !Number.isFinite(y)) { flush(); continue; }
      const px = sx(x), py = sy(Math.min(Math.max(y, y0), y1));
      run.push([px, py]);
      shapes.push({ kind: 'rect', x: px - 2.5, y: py - 2.5, w: 5, h: 5, fill: color, stroke: null });
    }
    flush();
  });

  // legend inside the plot area, in the corner that covers the fewest data points
  const entries = p.series.map((s, i) => ({ name: s.name, color: parseColor(s.color ?? PALETTE[i % PALETTE.length]!), dashed: false }));
  if (p.hline) entries.push({ name: p.hline.label, color: GREY, dashed: true });
  if (p.vline) entries.push({ name: p.vline.label, color: VLINE, dashed: true });
  const legendW = Math.max(...entries.map((e) => textWidth(e.name, 'small'))) + 34;
  const legendH = 16 * entries.length + 6;
  const corners: Array<[number, number]> = [
    [left + pw - legendW - 8, top + 8], [left + 8, top + 8], [left + pw - legendW - 8, top + ph - legendH - 8], [left + 8, top + ph - legendH - 8],
  ];
  const covered = ([cx, cy]: [number, number]) => {
    let n = 0;
    for (const s of p.series) {
      for (let j = 0; j < s.x.length; j++) {
        const px = sx(s.x[j]!), py = sy(s.y[j]!);
        if (px >= cx - 12 && px <= cx + legendW + 12 && py >= cy - 12 && py <= cy + legendH + 12) n++;
      }
    }
    return n;
  };
  const [lx, ly] = corners.reduce((best, c) => (covered(c) < covered(best) ? c : best));
  shapes.push({ kind: 'rect', x: lx, y: ly, w: legendW, h: legendH, fill: WHITE, stroke: GREY });
  entries.forEach((e, i) => {
    const y = ly + 11 + 16 * i;
    shapes.push({ kind: 'line', points: [[lx + 6, y], [lx + 24, y]], color: e.color, width: 2, dashed: e.dashed });
    shapes.push({ kind: 'text', x: lx + 29, y, text: e.name, size: 'small', anchor: 'start', color: BLACK, vertical: false });
  });

  shapes.push({ kind: 'text', x: width / 2, y: 18, text: p.title, size: 'large', anchor: 'middle', color: BLACK, vertical: false });
  shapes.push({ kind: 'text', x: left + pw / 2, y: height - 14, text: p.xLabel, size: 'small', anchor: 'middle', color: BLACK, vertical: false });
  shapes.push({ kind: 'text', x: 14, y: top + ph / 2, text: p.yLabel, size: 'small', anchor: 'middle', color: BLACK, vertical: true });
  return { width, height, shapes };
}

// ---------------------------------------------------------------- layout: heatmap

// A perceptually ordered dark-blue → teal → green → yellow colour map (viridis-like anchors).
const CMAP: RGB[] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** The colour of t ∈ [0, 1] (clamped) on the heatmap colour map. */
export function colormap(t: number): RGB {
  const c = Math.min(Math.max(t, 0), 1) * (CMAP.length - 1);
  const i = Math.min(Math.floor(c), CMAP.length - 2);
  const f = c - i;
  const a = CMAP[i]!, b = CMAP[i + 1]!;
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

function layoutHeatmap(p: Heatmap): Scene {
  const rows = p.values.length;
  const cols = rows > 0 ? p.values[0]!.length : 0;
  if (rows === 0 || cols === 0) throw new Error(`supra: heatmap '${p.title}': no values`);
  for (const [r, row] of p.values.entries()) {
    if (row.length !== cols) throw new Error(`supra: heatmap '${p.title}': row ${r} has ${row.length} values, row 0 has ${cols}`);
  }
  const width = p.width ?? 560, height = p.height ?? Math.min(640, Math.max(260, 90 + rows * 36));
  const shapes: Shape[] = [{ kind: 'rect', x: 0, y: 0, w: width, h: height, fill: WHITE, stroke: null }];
  const left = 70, right = 100, top = 40, bottom = 50;
  const pw = width - left - right, ph = height - top - bottom;
  const cw = pw / cols, ch = ph / rows;
  let [lo, hi] = finiteRange(p.values.flat());
  if (p.vmin !== undefined) lo = p.vmin;
  if (p.vmax !== undefined) hi = p.vmax;
  if (hi === lo) hi = lo + 1;
  const annotate = p.annotate ?? (cw >= 34 && ch >= 14);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = p.values[r]![c]!;
      const t = (v - lo) / (hi - lo);
      const fill = Number.isFinite(v) ? colormap(t) : GREY;
      shapes.push({ kind: 'rect', x: left + c * cw, y: top + r * ch, w: cw, h: ch, fill, stroke: null });
      if (annotate) {
        const dark = !Number.isFinite(v) || t < 0.6;
        shapes.push({
          kind: 'text', x: left + (c + 0.5) * cw, y: top + (r + 0.5) * ch, text: Number.isFinite(v) ? v.toFixed(2) : 'nan',
          size: 'small', anchor: 'middle', color: dark ? WHITE : BLACK, vertical: false,
        });
      }
    }
  }
  shapes.push({ kind: 'rect', x: left, y: top, w: pw, h: ph, fill: null, stroke: BLACK });
  // row and column labels (thinned when crowded)
  const rowEvery = Math.max(1, Math.ceil(12 / ch));
  for (let r = 0; r < rows; r += rowEvery) {
    shapes.push({ kind: 'text', x: left - 6, y: top + (r + 0.5) * ch, text: p.rowLabels?.[r] ?? String(r), size: 'small', anchor: 'end', color: BLACK, vertical: false });
  }
  const colEvery = Math.max(1, Math.ceil(24 / cw));
  for (let c = 0; c < cols; c += colEvery) {
    shapes.push({ kind: 'text', x: left + (c + 0.5) * cw, y: top + ph + 11, text: p.colLabels?.[c] ?? String(c), size: 'small', anchor: 'middle', color: BLACK, vertical: false });
  }
  // colour bar with ticks
  const bx = left + pw + 22, bw = 16, steps = 64;
  for (let i = 0; i < steps; i++) {
    const y = top + ph - ((i + 1) / steps) * ph;
    shapes.push({ kind: 'rect', x: bx, y, w: bw, h: ph / steps + 0.5, fill: colormap((i + 0.5) / steps), stroke: null });
  }
  shapes.push({ kind: 'rect', x: bx, y: top, w: bw, h: ph, fill: null, stroke: BLACK });
  for (const t of niceTicks(lo, hi, 5)) {
    const y = top + ph - ((t - lo) / (hi - lo)) * ph;
    shapes.push({ kind: 'line', points: [[bx + bw, y], [bx + bw + 4, y]], color: BLACK, width: 1, dashed: false });
    shapes.push({ kind: 'text', x: bx + bw + 7, y, text: formatNumber(t), size: 'small', anchor: 'start', color: BLACK, vertical: false });
  }
  shapes.push({ kind: 'text', x: width / 2, y: 18, text: p.title, size: 'large', anchor: 'middle', color: BLACK, vertical: false });
  shapes.push({ kind: 'text', x: left + pw / 2, y: height - 14, text: p.xLabel, size: 'small', anchor: 'middle', color: BLACK, vertical: false });
  shapes.push({ kind: 'text', x: 14, y: top + ph / 2, text: p.yLabel, size: 'small', anchor: 'middle', color: BLACK, vertical: true });
  return { width, height, shapes };
}

// ---------------------------------------------------------------- SVG

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const r2 = (v: number) => String(Math.round(v * 100) / 100);

function sceneToSvg(scene: Scene): string {
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" font-family="Helvetica, Arial, sans-serif">`,
  ];
  for (const s of scene.shapes) {
    if (s.kind === 'rect') {
      out.push(`<rect x="${r2(s.x)}" y="${r2(s.y)}" width="${r2(s.w)}" height="${r2(s.h)}" fill="${s.fill ? hex(s.fill) : 'none'}"${s.stroke ? ` stroke="${hex(s.stroke)}"` : ''}/>`);
    } else if (s.kind === 'line') {
      const pts = s.points.map(([x, y]) => `${r2(x)},${r2(y)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${hex(s.color)}" stroke-width="${s.width}"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
    } else {
      const rotate = s.vertical ? ` transform="rotate(-90 ${r2(s.x)} ${r2(s.y)})"` : '';
      out.push(
        `<text x="${r2(s.x)}" y="${r2(s.y)}" font-size="${TEXT[s.size].svgSize}" text-anchor="${s.anchor}" dominant-baseline="middle" fill="${hex(s.color)}"${rotate}>${escapeXml(s.text)}</text>`,
      );
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- raster

// 5×7 bitmap font for ASCII 32…126: 7 rows per glyph, 5 bits per row (0x10 = leftmost column).
const FONT_ROWS = [
  '00000000000000', '04040404040004', '0a0a0000000000', '0a0a1f0a1f0a0a', '040f140e051e04', '18190204081303',
  '0814140815120d', '04040000000000', '02040808080402', '08040202020408', '0004150e150400', '0004041f040400',
  '000000000c0408', '0000001f000000', '00000000000c0c', '00010204081000', '0e11131519110e', '040c040404040e',
  '0e11010204081f', '1f02040201110e', '02060a121f0202', '1f101e0101110e', '0608101e11110e', '1f010204080808',
  '0e11110e11110e', '0e11110f01020c', '000c0c000c0c00', '000c0c000c0408', '02040810080402', '00001f001f0000',
  '08040201020408', '0e110102040004', '0e11010d15150e', '0e1111111f1111', '1e11111e11111e', '0e11101010110e',
  '1c12111111121c', '1f10101e10101f', '1f10101e101010', '0e11101711110f', '1111111f111111', '0e04040404040e',
  '0702020202120c', '11121418141211', '1010101010101f', '111b1515111111', '11111915131111', '0e11111111110e',
  '1e11111e101010', '0e11111115120d', '1e11111e141211', '0f10100e01011e', '1f040404040404', '1111111111110e',
  '11111111110a04', '1111111515150a', '11110a040a1111', '1111110a040404', '1f01020408101f', '0e08080808080e',
  '00100804020100', '0e02020202020e', '040a1100000000', '0000000000001f', '08040200000000', '00000e010f110f',
  '1010161911111e', '00000e1010110e', '01010d1311110f', '00000e111f100e', '0609081c080808', '0f1111110f010e',
  '10101619111111', '04000c0404040e', '0200060202120c', '10101214181412', '0c04040404040e', '00001a15151111',
  '00001619111111', '00000e1111110e', '1e1111111e1010', '0f1111110f0101', '00001619101010', '00000e100e011e',
  '08081c08080906', '0000111111130d', '00001111110a04', '0000111115150a', '0000110a040a11', '111111110f010e',
  '00001f0204081f', '02040408040402', '04040404040404', '08040402040408', '00000815020000',
];

// lowercase letters drawn 2 dots lower, below the baseline
const DESCENDERS = 'gpqy';

function glyphRows(ch: string): number[] {
  let code = ch.charCodeAt(0);
  if (code < 32 || code > 126) code = 63; // '?' for anything the font does not have
  const s = FONT_ROWS[code - 32]!;
  const rows: number[] = [];
  for (let i = 0; i < 7; i++) rows.push(parseInt(s.slice(2 * i, 2 * i + 2), 16));
  return rows;
}

/** Pixels are units × scale; text is drawn with the bitmap font at an integer pixel size per font dot. */
class Canvas {
  readonly data: Uint8Array;

  constructor(readonly width: number, readonly height: number, readonly scale: number) {
    this.data = new Uint8Array(width * height * 4);
  }

  /** Fill the pixel rectangle [x0, x1) × [y0, y1) (pixel coordinates, clipped). */
  fillPixels(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    const xa = Math.max(0, Math.round(x0)), xb = Math.min(this.width, Math.round(x1));
    const ya = Math.max(0, Math.round(y0)), yb = Math.min(this.height, Math.round(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const o = (y * this.width + x) * 4;
        this.data[o] = c[0];
        this.data[o + 1] = c[1];
        this.data[o + 2] = c[2];
        this.data[o + 3] = 255;
      }
    }
  }

  rect(s: Extract<Shape, { kind: 'rect' }>): void {
    const k = this.scale;
    if (s.fill) this.fillPixels(s.x * k, s.y * k, (s.x + s.w) * k, (s.y + s.h) * k, s.fill);
    if (s.stroke) {
      const pts: Array<[number, number]> = [[s.x, s.y], [s.x + s.w, s.y], [s.x + s.w, s.y + s.h], [s.x, s.y + s.h], [s.x, s.y]];
      this.polyline(pts, s.stroke, 1, false);
    }
  }

  /** A polyline of the given width in units: square brushes stamped every half pixel along each segment. */
  polyline(points: Array<[number, number]>, c: RGB, width: number, dashed: boolean): void {
    const k = this.scale;
    const w = Math.max(1, width * k);
    let travelled = 0;
    for (let i = 0; i + 1 < points.length; i++) {
      const [ax, ay] = points[i]!, [bx, by] = points[i + 1]!;
      const len = Math.hypot(bx - ax, by - ay) * k;
      const n = Math.max(1, Math.ceil(len * 2));
      for (let j = 0; j <= n; j++) {
        const f = j / n;
        const d = travelled + f * len;
        if (dashed && d % (10 * k) > 6 * k) continue; // 6 on, 4 off (units)
        const x = (ax + f * (bx - ax)) * k, y = (ay + f * (by - ay)) * k;
        this.fillPixels(x - w / 2, y - w / 2, x + w / 2, y + w / 2, c);
      }
      travelled += len;
    }
  }

  text(s: Extract<Shape, { kind: 'text' }>): void {
    const dot = Math.max(1, Math.round(TEXT[s.size].fontScale * this.scale)); // pixels per font dot
    const advance = 6 * dot, glyphH = 7 * dot;
    const total = s.text.length * advance - dot;
    const start = s.anchor === 'start' ? 0 : s.anchor === 'middle' ? -total / 2 : -total;
    const ox = Math.round(s.x * this.scale), oy = Math.round(s.y * this.scale);
    for (let i = 0; i < s.text.length; i++) {
      const rows = glyphRows(s.text[i]!);
      for (let gy = 0; gy < 7; gy++) {
        for (let gx = 0; gx < 5; gx++) {
          if (!(rows[gy]! & (0x10 >> gx))) continue;
          // (u, v): position along the text and downwards across it, relative to the anchor point
          const u = Math.round(start) + i * advance + gx * dot;
          const v = Math.round(-glyphH / 2) + (gy + (DESCENDERS.includes(s.text[i]!) ? 2 : 0)) * dot;
          if (s.vertical) this.fillPixels(ox + v, oy - u - dot, ox + v + dot, oy - u, s.color); // rotated −90°
          else this.fillPixels(ox + u, oy + v, ox + u + dot, oy + v + dot, s.color);
        }
      }
    }
  }
}

function rasterize(scene: Scene, scale: number): Raster {
  const canvas = new Canvas(Math.round(scene.width * scale), Math.round(scene.height * scale), scale);
  for (const s of scene.shapes) {
    if (s.kind === 'rect') canvas.rect(s);
    else if (s.kind === 'line') canvas.polyline(s.points, s.color, s.width, s.dashed);
    else canvas.text(s);
  }
  return { width: canvas.width, height: canvas.height, data: canvas.data };
}

// ---------------------------------------------------------------- PNG

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): PNG chunks use the same one as zip.
export { crc32 };

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An 8-bit RGBA PNG (colour type 6, no interlace, filter 0 on every scanline). */
export function encodePng(r: Raster): Uint8Array {
  if (r.data.length !== r.width * r.height * 4) throw new Error(`supra: encodePng: ${r.data.length} bytes for ${r.width}×${r.height} RGBA`);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, r.width);
  v.setUint32(4, r.height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const stride = r.width * 4;
  const raw = new Uint8Array(r.height * (stride + 1));
  for (let y = 0; y < r.height; y++) raw.set(r.data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- entry points

/** Pixels per unit of the PNGs (2: a 640 × 400 plot is 1280 × 800 pixels). */
export const PNG_SCALE = 2;

export function linePlotSvg(p: LinePlot): string {
  return sceneToSvg(layoutLinePlot(p));
}

export function linePlotRaster(p: LinePlot, scale = PNG_SCALE): Raster {
  return rasterize(layoutLinePlot(p), scale);
}

export function linePlotPng(p: LinePlot, scale = PNG_SCALE): Uint8Array {
  return encodePng(linePlotRaster(p, scale));
}

export function heatmapSvg(p: Heatmap): string {
  return sceneToSvg(layoutHeatmap(p));
}

export function heatmapRaster(p: Heatmap, scale = PNG_SCALE): Raster {
  return rasterize(layoutHeatmap(p), scale);
}

export function heatmapPng(p: Heatmap, scale = PNG_SCALE): Uint8Array {
  return encodePng(heatmapRaster(p, scale));
}
