// A time-series chart (uPlot, drawn on a canvas) with the same figures beside it as a table, for screen
// readers, keyboards and anyone who wants the exact numbers.
import uPlot from 'uplot'
import { type Child, h, table } from './dom.js'

export interface Series {
  readonly label: string
  readonly values: ReadonlyArray<number | null>
  readonly color: string
  /** drawn as steps (a level held until the next change) rather than lines */
  readonly stepped?: boolean
}

export interface ChartElement extends HTMLElement {
  /** the uPlot instance, whose data is what the canvas shows */
  chart?: uPlot
}

const charts = new Set<uPlot>()

/** Destroys every chart of the page being left. */
export const destroyCharts = (): void => {
  for (const chart of charts) chart.destroy()
  charts.clear()
}

/**
 * A figure with a chart of `series` over the window starts `times` (ISO strings) and the table of the same
 * numbers; `name` marks it for tests and links. Call after the parent is in the document (uPlot measures it).
 */
export const timeChart = (
  parent: HTMLElement,
  name: string,
  title: string,
  times: readonly string[],
  series: readonly Series[],
  options: {
    yLabel: string
    format?: (value: number | null) => Child
    yValues?: (value: number) => string
  } = {
    yLabel: '',
  },
): ChartElement => {
  const format = options.format ?? ((value) => (value === null ? '—' : value))
  const plot = h('div', { class: 'plot', 'aria-hidden': 'true' })
  const figure: ChartElement = h(
    'figure',
    { class: 'chart', 'data-chart': name },
    h('figcaption', {}, title),
    plot,
    h(
      'details',
      {},
      h('summary', {}, 'The figures as a table'),
      table(
        title,
        ['window start', ...series.map((s) => s.label)],
        times.map((start, i) => [start, ...series.map((s) => format(s.values[i] ?? null))]),
        { 'data-chart-table': name },
      ),
    ),
  )
  parent.append(figure)
  // the figure's own width, once it is laid out in its grid cell
  const width = Math.max(300, (plot.clientWidth || figure.clientWidth || 600) - 4)
  const xs = times.map((t) => Date.parse(t) / 1000)
  const chart = new uPlot(
    {
      width,
      height: 220,
      legend: { live: false },
      scales: {
        x: { time: true },
        y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: '#333', grid: { stroke: '#e3e3e3' } },
        {
          label: options.yLabel,
          stroke: '#333',
          size: options.yValues ? 84 : 56,
          grid: { stroke: '#e3e3e3' },
          ...(options.yValues
            ? { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => options.yValues?.(t) ?? '') }
            : {}),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          points: { show: true, size: 5 },
          ...(s.stepped ? { paths: uPlot.paths.stepped?.({ align: 1 }) } : {}),
        })),
      ],
    },
    [xs, ...series.map((s) => [...s.values])] as uPlot.AlignedData,
    plot,
  )
  charts.add(chart)
  figure.chart = chart
  return figure
}
