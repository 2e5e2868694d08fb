/**
 * Line plots as PNGs (the invariance curves of ZF Fig. 5): an SVG built here, rendered by sharp
 * (librsvg). Panels side by side, each one or more series over the same x values.
 */
import sharp from 'sharp';

export interface PlotPanel {
  title: string;
  /** The y axis: from 0 (or the data's minimum, if below) to `yMax` (default: the data's maximum). */
  yMax?: number;
  series: { name: string; values: number[] }[];
}

const COLOURS = ['#2458c5', '#d1495b', '#2a9d8f', '#e9a23b'];
const [PANEL_W, PANEL_H] = [300, 220];
const MARGIN = { left: 52, right: 14, top: 30, bottom: 40 };

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** A tick label: short, without float noise. */
const tick = (v: number) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(Number(v.toPrecision(3))));

/** An SVG of `panels` over the x values `x`, labelled `xLabel`. */
export function plotSvg(x: number[], xLabel: string, panels: PlotPanel[]): string {
  const width = PANEL_W * panels.length;
  const parts = panels.map((panel, p) => {
    const all = panel.series.flatMap((s) => s.values).filter(Number.isFinite);
    const yMin = Math.min(0, ...all);
    const yMax = panel.yMax ?? Math.max(yMin + 1e-9, ...all);
    const [x0, x1] = [Math.min(...x), Math.max(...x)];
    const left = p * PANEL_W + MARGIN.left;
    const plotW = PANEL_W - MARGIN.left - MARGIN.right;
    const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
    const px = (v: number) => left + (x1 > x0 ? ((v - x0) / (x1 - x0)) * plotW : plotW / 2);
    const py = (v: number) => MARGIN.top + plotH - ((v - yMin) / (yMax - yMin || 1)) * plotH;
    const ticks = [0, 0.25, 0.5, 0.75, 1];
    const grid = ticks
      .map((t) => {
        const yv = yMin + t * (yMax - yMin);
        const xv = x0 + t * (x1 - x0);
        return (
          `<line x1="${left}" x2="${left + plotW}" y1="${py(yv)}" y2="${py(yv)}" stroke="#e3e6ea"/>` +
          `<text x="${left - 6}" y="${py(yv) + 4}" text-anchor="end">${tick(yv)}</text>` +
          `<text x="${px(xv)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${tick(xv)}</text>`
        );
      })
      .join('');
    const lines = panel.series
      .map((s, i) => {
        const points = s.values.map((v, j) => `${px(x[j]).toFixed(2)},${py(v).toFixed(2)}`).join(' ');
        const dots = s.values
          .map((v, j) => `<circle cx="${px(x[j]).toFixed(2)}" cy="${py(v).toFixed(2)}" r="2.5" fill="${COLOURS[i % COLOURS.length]}"/>`)
          .join('');
        return `<polyline points="${points}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"/>${dots}`;
      })
      .join('');
    return (
      `<g>${grid}<rect x="${left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#8a93a0"/>${lines}` +
      `<text x="${left + plotW / 2}" y="18" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>` +
      `<text x="${left + plotW / 2}" y="${PANEL_H - 6}" text-anchor="middle">${escapeXml(xLabel)}</text></g>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_H}" viewBox="0 0 ${width} ${PANEL_H}" font-family="DejaVu Sans, sans-serif" font-size="11" fill="#1d2330">` +
    `<rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>`
  );
}

/** The plot as a PNG. */
export function plotPng(x: number[], xLabel: string, panels: PlotPanel[]): Promise<Buffer> {
  return sharp(Buffer.from(plotSvg(x, xLabel, panels)))
    .png()
    .toBuffer();
}
