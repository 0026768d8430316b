/** A time-series line chart (uPlot: small and fast, no dependencies) that redraws in place as data comes. */
import { useEffect, useRef } from "react";
import uPlot from "uplot";

export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

const COLORS = ["#4c6ef5", "#e64980", "#12b886", "#fab005", "#7950f2", "#fd7e14", "#15aabf", "#82c91e"];

export function LineChart({
  title,
  times,
  series,
  unit,
  height = 200,
}: {
  title: string;
  /** Seconds since the epoch, one per point. */
  times: readonly number[];
  series: readonly Series[];
  unit: string;
  height?: number;
}) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const labels = series.map((s) => s.label).join("\u0000");

  // biome-ignore lint/correctness/useExhaustiveDependencies: the chart is rebuilt only when its series change.
  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const options: uPlot.Options = {
      title,
      width: element.clientWidth || 600,
      height,
      scales: { x: { time: true } },
      axes: [{}, { label: unit, size: 60 }],
      series: [
        {},
        ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5 })),
      ],
    };
    const chart = new uPlot(options, [[...times], ...series.map((s) => [...s.values])], element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
  }, [labels, title, unit, height]);

  useEffect(() => {
    plot.current?.setData([[...times], ...series.map((s) => [...s.values])]);
  }, [times, series]);

  return <div ref={container} data-testid={`chart-${title}`} />;
}
