// Bar charts on uPlot (vendored): stacked bars, with an optional line on a second axis.
// Every chart's values are kept in vigilCharts.shown[key], exactly as they were plotted.
"use strict";

const vigilCharts = (() => {
  const shown = {};
  const plots = {};
  const observed = new WeakSet();
  const HEIGHT = 260;
  const PHONE_HEIGHT = 210;
  const PIXELS_PER_CHARACTER = 8;

  function formatNumber(value, unit) {
    if (value === null || value === undefined) {
      return "–";
    }
    const digits = unit === "%" ? 0 : 1;
    return value.toFixed(digits) + " " + unit;
  }

  // Cumulative sums, so that each bar can be drawn from zero up to its top.
  function stackTops(bars) {
    const tops = [];
    let running = bars.length ? bars[0].values.map(() => 0) : [];
    for (const bar of bars) {
      running = running.map((sum, i) => sum + (bar.values[i] || 0));
      tops.push(running);
    }
    return tops;
  }

  // Every how many bars a label fits, at the chart's current width.
  function labelTicks(labels, width) {
    const longest = Math.max(1, ...labels.map((label) => label.length));
    const fitting = Math.max(1, Math.floor(width / (longest * PIXELS_PER_CHARACTER + 18)));
    const step = Math.max(1, Math.ceil(labels.length / fitting));
    const ticks = [];
    for (let i = 0; i < labels.length; i += step) {
      ticks.push(i);
    }
    return ticks;
  }

  function barSeries(bar, unit) {
    return {
      label: bar.label,
      fill: bar.colour,
      stroke: bar.colour,
      width: 0,
      paths: uPlot.paths.bars({ size: [0.75, 48] }),
      points: { show: false },
      // The legend shows the segment's own value, not the stacked top.
      value: (plot, top, seriesIndex, index) =>
        formatNumber(index === null ? null : bar.values[index], unit),
    };
  }

  function lineSeries(line) {
    return {
      label: line.label,
      stroke: line.colour,
      width: 2,
      scale: line.unit,
      spanGaps: false,
      points: { show: true, size: 6, fill: line.colour },
      value: (plot, value) => formatNumber(value, line.unit),
    };
  }

  function options(spec, width) {
    const count = spec.labels.length;
    // uPlot paints series in order: the tallest stack first, so lower segments cover it.
    const bars = spec.bars.slice().reverse();
    const series = [{ label: spec.axisLabel || "", value: (plot, i) => spec.labels[i] ?? "" }];
    series.push(...bars.map((bar) => barSeries(bar, spec.unit)));
    const axes = [
      {
        splits: (plot) => labelTicks(spec.labels, plot.bbox.width / uPlot.pxRatio),
        values: (plot, ticks) => ticks.map((i) => spec.labels[i] ?? ""),
        grid: { show: false },
      },
      {
        label: spec.unit,
        size: 52,
        values: (plot, ticks) => ticks.map((value) => String(+value.toFixed(2))),
      },
    ];
    const scales = {
      x: { time: false, range: () => [-0.5, count - 0.5] },
      y: { range: (plot, min, max) => [0, max > 0 ? max * 1.08 : 1] },
    };
    if (spec.line) {
      series.push(lineSeries(spec.line));
      scales[spec.line.unit] = { range: () => [0, 100] };
      axes.push({
        scale: spec.line.unit, side: 1, label: spec.line.unit, size: 46, grid: { show: false },
      });
    }
    const height = window.matchMedia("(max-width: 600px)").matches ? PHONE_HEIGHT : HEIGHT;
    return { width, height, series, axes, scales, cursor: { points: { show: false } } };
  }

  function plotData(spec) {
    const xs = spec.labels.map((_, i) => i);
    const tops = stackTops(spec.bars).reverse();
    const data = [xs, ...tops];
    if (spec.line) {
      data.push(spec.line.values);
    }
    return data;
  }

  function keepSized(key, target) {
    if (observed.has(target)) {
      return;
    }
    observed.add(target);
    new ResizeObserver(() => {
      const plot = plots[key];
      if (plot && target.clientWidth > 0 && plot.width !== target.clientWidth) {
        plot.setSize({ width: target.clientWidth, height: plot.height });
      }
    }).observe(target);
  }

  // Draws (or redraws) the chart `key` into `target`.
  // spec: {keys: the buckets (hours of the day or start times), labels, unit,
  //        bars: [{name, label, colour, values}],
  //        line (optional): {name, label, colour, unit, values}}
  function draw(key, target, spec) {
    if (plots[key]) {
      plots[key].destroy();
    }
    keepSized(key, target);
    const values = {};
    for (const item of [...spec.bars, ...(spec.line ? [spec.line] : [])]) {
      values[item.name] = item.values.slice();
    }
    shown[key] = {
      keys: spec.keys.slice(), labels: spec.labels.slice(), unit: spec.unit, series: values,
    };
    target.replaceChildren();
    const width = Math.max(280, target.clientWidth);
    plots[key] = new uPlot(options(spec, width), plotData(spec), target);
    target.dataset.points = String(spec.labels.length);
  }

  function clear(key, target) {
    if (plots[key]) {
      plots[key].destroy();
      delete plots[key];
    }
    delete shown[key];
    target.replaceChildren();
    target.dataset.points = "0";
  }

  return { draw, clear, shown };
})();
