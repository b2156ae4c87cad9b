/** Long-running work with live progress (backfills, CSV imports) and the team's email report settings. */
import { useEffect, useState } from "preact/hooks";
import { call, type Page } from "./api";
import { ErrorNote, useAction, usePoll, useResource, when, type PageProps } from "./ui";

interface Backfill {
  id: string;
  scope: string;
  state: string;
  attempt: number;
  ranges_done: number;
  ranges_total: number;
  threads_planned: number;
  threads_labelled: number;
  failures: { ordinal: number; attempts: number; error: string }[];
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

function Progress({ done, total, label }: { done: number; total: number; label: string }) {
  return <progress value={done} max={Math.max(total, 1)} aria-label={label} />;
}

export function Backfills(p: PageProps) {
  const base = `/query/v1/projects/${p.session.projectId}/backfills/`;
  const list = useResource(() => call<Page<Backfill>>(p.session, "GET", `${base}?limit=20`), []);
  const [scope, setScope] = useState("unlabelled");
  const start = useAction();
  const running = list.data?.results.filter((b) => b.state === "running") ?? [];
  // GET of one backfill reconciles it with its execution; the listing shows it as last recorded.
  usePoll(running.length > 0, () => {
    void Promise.all(running.map((b) => call(p.session, "GET", `${base}${b.id}/`))).then(list.reload, list.reload);
  });
  return (
    <section>
      <h1>Backfills</h1>
      <p class="hint">Label past threads in bulk: the unlabelled ones, or every classifier label again after the categories changed (user labels are kept).</p>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          void start.run(async () => (await call(p.session, "POST", base, { scope }), list.reload()));
        }}
      >
        <label>
          Scope{" "}
          <select value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="unlabelled">unlabelled threads</option>
            <option value="relabel_auto">relabel classifier labels</option>
          </select>
        </label>{" "}
        <button type="submit" disabled={start.busy}>
          Start backfill
        </button>
        <ErrorNote error={start.error} />
      </form>
      <ErrorNote error={list.error} />
      {list.data?.results.map((b) => (
        <div class="card">
          <p>
            <strong>{b.state}</strong> · {b.scope} · attempt {b.attempt} · started {when(b.started_at)}
            {b.finished_at && ` · finished ${when(b.finished_at)}`}
          </p>
          <Progress done={b.ranges_done} total={b.ranges_total} label="ranges done" /> {b.ranges_done}/{b.ranges_total} ranges ·{" "}
          {b.threads_labelled}/{b.threads_planned} threads labelled
          {b.error && <p class="error">{b.error}</p>}
          {b.failures.map((f) => (
            <p class="error">
              range {f.ordinal}: {f.error} ({f.attempts} attempts)
            </p>
          ))}
        </div>
      ))}
    </section>
  );
}

interface ImportJob {
  id: string;
  status: string;
  total_rows: number;
  rows_done: number;
  rows_rejected: number;
  chunks_total: number;
  chunks_done: number;
  rejections: { row: number; reason: string }[];
  errors: string[];
  created_at: string;
}

export function Imports(p: PageProps) {
  const base = `/query/v1/projects/${p.session.projectId}/interactions/import/`;
  const list = useResource(() => call<Page<ImportJob>>(p.session, "GET", `${base}?limit=20`), []);
  const upload = useAction();
  usePoll(list.data?.results.some((j) => j.status !== "done") ?? false, list.reload);
  return (
    <section>
      <h1>Import past interactions</h1>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          void upload.run(async () => (await call(p.session, "POST", base, new FormData(form)), form.reset(), list.reload()));
        }}
      >
        <label>
          CSV (question, answer, timestamp[, latency_ms][, thread]) <input type="file" name="file" accept=".csv,text/csv" required />
        </label>{" "}
        <button type="submit" disabled={upload.busy}>
          Import
        </button>
        <ErrorNote error={upload.error} />
      </form>
      <ErrorNote error={list.error} />
      {list.data?.results.map((j) => (
        <div class="card">
          <p>
            <strong>{j.status}</strong> · {when(j.created_at)}
          </p>
          <Progress done={j.rows_done + j.rows_rejected} total={j.total_rows} label="rows processed" /> {j.rows_done} imported,{" "}
          {j.rows_rejected} rejected of {j.total_rows} rows
          {j.errors.map((e) => (
            <p class="error">{e}</p>
          ))}
          {j.rejections.length > 0 && (
            <details>
              <summary>Rejected rows ({j.rejections.length} shown)</summary>
              <ul>
                {j.rejections.map((r) => (
                  <li>
                    row {r.row}: {r.reason}
                  </li>
                ))}
              </ul>
            </details>
          )}
        </div>
      ))}
    </section>
  );
}

interface ReportSettings {
  recipients: string[];
  cadence: string;
  timezone: string;
  enabled: boolean;
  updated_at: string | null;
}

export function Reports(p: PageProps) {
  const current = useResource(() => call<ReportSettings>(p.session, "GET", "/query/v1/team/report-settings/"), []);
  const [form, setForm] = useState<ReportSettings | null>(null);
  const [note, setNote] = useState("");
  const [previewTo, setPreviewTo] = useState("");
  useEffect(() => setForm(current.data), [current.data]);
  const save = useAction();
  const preview = useAction();
  if (!form) return <ErrorNote error={current.error} />;
  return (
    <section>
      <h1>Email reports</h1>
      <form
        class="card stack"
        onSubmit={(e) => {
          e.preventDefault();
          const { recipients, cadence, timezone, enabled } = form;
          void save.run(async () => {
            current.setData(await call<ReportSettings>(p.session, "PUT", "/query/v1/team/report-settings/", { recipients, cadence, timezone, enabled }));
            setNote("Saved.");
          });
        }}
      >
        <label>
          Recipients (one per line)
          <textarea
            rows={3}
            value={form.recipients.join("\n")}
            onInput={(e) => setForm({ ...form, recipients: e.currentTarget.value.split("\n").map((x) => x.trim()).filter(Boolean) })}
          />
        </label>
        <label>
          Cadence{" "}
          <select value={form.cadence} onChange={(e) => setForm({ ...form, cadence: e.currentTarget.value })}>
            {["daily", "weekly", "monthly"].map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          Timezone (IANA) <input value={form.timezone} onInput={(e) => setForm({ ...form, timezone: e.currentTarget.value })} />
        </label>
        <label>
          <input type="checkbox" checked={form.enabled} onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })} /> Send reports
        </label>
        <div>
          <button type="submit" disabled={save.busy}>
            Save settings
          </button>
        </div>
        <ErrorNote error={save.error} />
        {note && <p role="status">{note}</p>}
      </form>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          void preview.run(async () => {
            const r = await call<{ sent_to: string[]; period_start: string; period_end: string }>(
              p.session,
              "POST",
              "/query/v1/team/report-settings/preview/",
              { to: previewTo || null },
            );
            setNote(`Preview of ${when(r.period_start)} – ${when(r.period_end)} sent to ${r.sent_to.join(", ")}.`);
          });
        }}
      >
        <label>
          Send me a preview at <input type="email" value={previewTo} placeholder="the recipients" onInput={(e) => setPreviewTo(e.currentTarget.value)} />
        </label>{" "}
        <button type="submit" disabled={preview.busy}>
          Send me a preview
        </button>
        <ErrorNote error={preview.error} />
      </form>
    </section>
  );
}
