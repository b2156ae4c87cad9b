/** Analytics charts (uPlot) and alerts with their rules. */
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { call, dayStart, query, type Page } from "./api";
import { ErrorNote, useAction, useResource, when, type PageProps } from "./ui";

interface Answers {
  questions: number;
  incomplete: number;
  failed: number;
  latency: { answered: number; avg_ms: number | null; p50_ms: number | null; p95_ms: number | null; first_token_p50_ms: number | null };
  tokens: { total: number };
}

interface Analytics {
  feedback?: { up: number; down: number; down_rate: number | null };
  threads: number;
  unlabelled: number;
  categories: { id: string; name: string; threads: number }[];
  answers: Answers;
  intervals: { start: string; threads: number; unlabelled: number; by_category: Record<string, number>; answers: Answers }[];
}

const PALETTE = ["#2457d6", "#d6452f", "#1f9d55", "#b7791f", "#805ad5", "#0f8b8d", "#c53f8c", "#4a5568"];

/**
 * One uPlot chart; rebuilt when its data changes (a handful of series over at most a few hundred buckets).
 * `stacked` draws bars stacked: series i is drawn as the sum of series i..n, each over the next, so the visible
 * part of each bar is its own count; the legend shows the series' own values.
 */
function Chart(props: { title: string; x: number[]; ys: (number | null)[][]; labels: string[]; stacked?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = ref.current;
    if (!host) return;
    const drawn = props.stacked
      ? props.ys.map((_, i) => props.x.map((_, j) => props.ys.slice(i).reduce((sum, y) => sum + (y[j] ?? 0), 0)))
      : props.ys;
    const bars = props.stacked ? uPlot.paths.bars?.({ size: [0.7, 48] }) : undefined;
    const plot = new uPlot(
      {
        width: Math.max(320, host.clientWidth || 640),
        height: 240,
        series: [
          {},
          ...props.labels.map((label, i) => ({
            label,
            stroke: PALETTE[i % PALETTE.length],
            fill: props.stacked ? PALETTE[i % PALETTE.length] : undefined,
            width: props.stacked ? 1 : 2,
            paths: bars,
            points: { show: !props.stacked },
            value: (_u: uPlot, _v: number | null, _s: number, idx: number | null) =>
              idx == null ? "--" : String(props.ys[i][idx] ?? "--"),
          })),
        ],
        axes: [{}, { size: 70 }],
        scales: { x: { time: true } },
      },
      [props.x, ...drawn] as uPlot.AlignedData,
      host,
    );
    return () => plot.destroy();
  }, [JSON.stringify(props)]);
  return (
    <figure class="card chart">
      <figcaption>{props.title}</figcaption>
      <div ref={ref} role="img" aria-label={props.title} />
    </figure>
  );
}

function isoDay(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}

export function AnalyticsPage(p: PageProps) {
  const [interval, setInterval] = useState("day");
  const [from, setFrom] = useState(isoDay(-13));
  const [to, setTo] = useState(isoDay(1));
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const data = useResource(
    () =>
      call<Analytics>(
        p.session,
        "GET",
        `/query/v1/projects/${p.session.projectId}/analytics/` + query({ from: dayStart(from), to: dayStart(to), interval, tz }),
      ),
    [interval, from, to],
  );
  const a = data.data;
  const xs = a?.intervals.map((b) => Date.parse(b.start) / 1000) ?? [];
  return (
    <section>
      <h1>Analytics</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Per{" "}
          <select value={interval} onChange={(e) => setInterval(e.currentTarget.value)}>
            <option value="day">day</option>
            <option value="week">week</option>
          </select>
        </label>
        <label>
          From <input type="date" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          Before <input type="date" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        </label>
        <span class="hint">times in {tz}</span>
      </form>
      <ErrorNote error={data.error} />
      {a && (
        <>
          <div class="figures">
            <div class="card figure">
              <strong>{a.threads}</strong> threads
            </div>
            <div class="card figure">
              <strong>{a.answers.questions}</strong> questions
            </div>
            <div class="card figure">
              <strong>{a.answers.incomplete + a.answers.failed}</strong> unanswered
            </div>
            <div class="card figure">
              <strong>{a.answers.latency.p50_ms ?? "—"}</strong> ms p50 · <strong>{a.answers.latency.p95_ms ?? "—"}</strong> ms p95
            </div>
            <div class="card figure">
              <strong>{a.unlabelled}</strong> unlabelled
            </div>
            {a.feedback && (
              <div class="card figure">
                <strong>{a.feedback.up}</strong> helpful · <strong>{a.feedback.down}</strong> not helpful
              </div>
            )}
          </div>
          <Chart
            title={`Threads per category per ${interval}`}
            x={xs}
            ys={[...a.categories.map((c) => a.intervals.map((b) => b.by_category[c.id] ?? 0)), a.intervals.map((b) => b.unlabelled)]}
            labels={[...a.categories.map((c) => c.name), "unlabelled"]}
            stacked
          />
          <Chart
            title={`Mean answer latency per ${interval} (ms)`}
            x={xs}
            ys={[a.intervals.map((b) => b.answers.latency.avg_ms)]}
            labels={["mean latency ms"]}
          />
          <Chart
            title={`Questions and unanswered per ${interval}`}
            x={xs}
            ys={[a.intervals.map((b) => b.answers.questions), a.intervals.map((b) => b.answers.incomplete + b.answers.failed)]}
            labels={["questions", "unanswered (incomplete or failed)"]}
          />
        </>
      )}
    </section>
  );
}

const METRICS = ["answer_length", "first_token_ms", "latency_ms", "question_length", "retrieval_score", "source_count", "tokens_used"];

interface Rule {
  id: string;
  name: string;
  kind: "threshold" | "outlier";
  metric: string;
  operator: string | null;
  threshold: number | null;
  stddevs: number | null;
  min_samples: number;
  enabled: boolean;
}

interface Alert {
  id: string;
  rule_name: string;
  metric: string;
  value: number;
  thread_id: string;
  occurred_at: string;
  kind: string;
  operator: string | null;
  threshold: number | null;
}

export function Alerts(p: PageProps) {
  const base = `/query/v1/projects/${p.session.projectId}`;
  const rules = useResource(() => call<Page<Rule>>(p.session, "GET", `${base}/alert-rules/?limit=200`), []);
  const alerts = useResource(() => call<Page<Alert>>(p.session, "GET", `${base}/alerts/?limit=50`), []);
  const [form, setForm] = useState({ name: "", kind: "threshold", metric: "latency_ms", operator: ">", threshold: "5000", stddevs: "2", min_samples: "30" });
  const act = useAction();
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const create = (e: Event) => {
    e.preventDefault();
    const body =
      form.kind === "threshold"
        ? { name: form.name, kind: form.kind, metric: form.metric, operator: form.operator, threshold: Number(form.threshold), min_samples: Number(form.min_samples) }
        : { name: form.name, kind: form.kind, metric: form.metric, stddevs: Number(form.stddevs), min_samples: Number(form.min_samples) };
    void act.run(async () => (await call(p.session, "POST", `${base}/alert-rules/`, body), rules.reload()));
  };
  return (
    <section>
      <h1>Alerts</h1>
      <h2>Rules</h2>
      <ErrorNote error={rules.error ?? act.error} />
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Rule</th>
            <th>Min samples</th>
            <th>Enabled</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rules.data?.results.map((r) => (
            <tr>
              <td>{r.name || "—"}</td>
              <td>
                {r.kind === "threshold" ? `${r.metric} ${r.operator} ${r.threshold}` : `${r.metric} beyond ${r.stddevs ?? 2} standard deviations`}
              </td>
              <td>{r.min_samples}</td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`enable ${r.name || r.metric}`}
                  checked={r.enabled}
                  onChange={(e) =>
                    act.run(async () => (await call(p.session, "PATCH", `${base}/alert-rules/${r.id}/`, { enabled: e.currentTarget.checked }), rules.reload()))
                  }
                />
              </td>
              <td>
                <button type="button" class="danger" onClick={() => act.run(async () => (await call(p.session, "DELETE", `${base}/alert-rules/${r.id}/`), rules.reload()))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="card filters" onSubmit={create} aria-label="New alert rule">
        <label>
          Name <input value={form.name} onInput={set("name")} />
        </label>
        <label>
          Kind
          <select value={form.kind} onChange={set("kind")}>
            <option value="threshold">threshold</option>
            <option value="outlier">outlier</option>
          </select>
        </label>
        <label>
          Metric
          <select value={form.metric} onChange={set("metric")}>
            {METRICS.map((m) => (
              <option value={m}>{m}</option>
            ))}
          </select>
        </label>
        {form.kind === "threshold" ? (
          <>
            <label>
              Operator
              <select value={form.operator} onChange={set("operator")}>
                {[">", ">=", "<", "<="].map((o) => (
                  <option value={o}>{o}</option>
                ))}
              </select>
            </label>
            <label>
              Threshold <input type="number" step="any" value={form.threshold} onInput={set("threshold")} />
            </label>
          </>
        ) : (
          <label>
            Standard deviations <input type="number" step="any" value={form.stddevs} onInput={set("stddevs")} />
          </label>
        )}
        <label>
          Min samples <input type="number" value={form.min_samples} onInput={set("min_samples")} />
        </label>
        <button type="submit" disabled={act.busy}>
          Add rule
        </button>
      </form>
      <h2>Recent alerts</h2>
      <ErrorNote error={alerts.error} />
      <table>
        <thead>
          <tr>
            <th>When</th>
            <th>Rule</th>
            <th>Value</th>
            <th>Thread</th>
          </tr>
        </thead>
        <tbody>
          {alerts.data?.results.map((a) => (
            <tr>
              <td>{when(a.occurred_at)}</td>
              <td>{a.rule_name || a.metric}</td>
              <td>
                {a.metric} = {a.value}
              </td>
              <td>
                <a href={`#/threads/${a.thread_id}`}>open</a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {alerts.data && alerts.data.results.length === 0 && <p>No alerts.</p>}
    </section>
  );
}
