/** Threads by category with the API's filters, and one thread's history with its sources and label correction. */
import { useState } from "preact/hooks";
import { call, dayStart, query, type Page } from "./api";
import { ErrorNote, Markdown, useAction, useResource, when, type PageProps } from "./ui";

export interface Category {
  id: string;
  name: string;
  description: string;
  examples: string[];
}

interface ThreadItem {
  id: string;
  category: { id: string; name: string } | null;
  label_source: "auto" | "user" | null;
  label_confidence: number | null;
  first_question: string | null;
  message_count: number;
  created_at: string;
  channel: string;
}

interface Source {
  index: number;
  title: string;
  heading: string | null;
  excerpt: string;
  score: number;
  cited: boolean;
}

interface Exchange {
  question_answer_id: string;
  question: string;
  answer: string;
  status: string;
  sources: Source[];
  latency_ms: number | null;
  error: string | null;
  created_at: string;
  feedback?: { up: number; down: number; comments: { rating: string; comment: string }[] };
}

interface ThreadDetail extends ThreadItem {
  label_model: string | null;
  messages: Exchange[];
}

/** Every category of the project (the list is small: one page of 200). */
export function useCategories(p: PageProps) {
  return useResource(
    () => call<Page<Category>>(p.session, "GET", `/query/v1/projects/${p.session.projectId}/categories/?limit=200`),
    [],
  );
}

const blank = { category_id: "", unlabelled: false, label_source: "", channel: "", created_after: "", created_before: "" };

export function Threads(p: PageProps) {
  const categories = useCategories(p);
  const [filters, setFilters] = useState(blank);
  const [pages, setPages] = useState<ThreadItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const path = (after: string | null) =>
    `/query/v1/projects/${p.session.projectId}/threads/` +
    query({
      ...filters,
      created_after: dayStart(filters.created_after),
      created_before: dayStart(filters.created_before),
      cursor: after,
    });
  const list = useResource(async () => {
    const page = await call<Page<ThreadItem>>(p.session, "GET", path(null));
    setPages(page.results);
    setCursor(page.next_cursor);
    return page;
  }, [JSON.stringify(filters)]);
  const more = useAction();
  const set = (k: keyof typeof blank) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setFilters({ ...filters, [k]: t.type === "checkbox" ? t.checked : t.value });
  };
  return (
    <section>
      <h1>Threads</h1>
      <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Category
          <select value={filters.category_id} onChange={set("category_id")}>
            <option value="">All</option>
            {categories.data?.results.map((c) => (
              <option value={c.id}>{c.name}</option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={filters.unlabelled} onChange={set("unlabelled")} /> Unlabelled only
        </label>
        <label>
          Label source
          <select value={filters.label_source} onChange={set("label_source")}>
            <option value="">Any</option>
            <option value="auto">Classifier</option>
            <option value="user">User</option>
          </select>
        </label>
        <label>
          Channel
          <select value={filters.channel} onChange={set("channel")}>
            <option value="">Any</option>
            {["api", "widget", "openai", "mcp"].map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          From <input type="date" value={filters.created_after} onChange={set("created_after")} />
        </label>
        <label>
          Before <input type="date" value={filters.created_before} onChange={set("created_before")} />
        </label>
      </form>
      {categories.data && (
        <nav class="chips" aria-label="Categories">
          {categories.data.results.map((c) => (
            <button
              type="button"
              aria-pressed={filters.category_id === c.id}
              onClick={() => setFilters({ ...filters, category_id: filters.category_id === c.id ? "" : c.id })}
            >
              {c.name}
            </button>
          ))}
        </nav>
      )}
      <ErrorNote error={list.error ?? categories.error} />
      <table>
        <thead>
          <tr>
            <th>First question</th>
            <th>Category</th>
            <th>Label</th>
            <th>Messages</th>
            <th>Channel</th>
            <th>Started</th>
          </tr>
        </thead>
        <tbody>
          {pages.map((t) => (
            <tr>
              <td>
                <a href={`#/threads/${t.id}`}>{t.first_question ?? "(no question yet)"}</a>
              </td>
              <td>{t.category?.name ?? <em>unlabelled</em>}</td>
              <td>{t.label_source ?? "—"}</td>
              <td>{t.message_count}</td>
              <td>{t.channel}</td>
              <td>{when(t.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && pages.length === 0 && <p>No threads match.</p>}
      {cursor && (
        <button
          type="button"
          disabled={more.busy}
          onClick={() =>
            more.run(async () => {
              const page = await call<Page<ThreadItem>>(p.session, "GET", path(cursor));
              setPages([...pages, ...page.results]);
              setCursor(page.next_cursor);
            })
          }
        >
          Load more
        </button>
      )}
      <ErrorNote error={more.error} />
    </section>
  );
}

export function ThreadView(p: PageProps & { id: string }) {
  const categories = useCategories(p);
  const thread = useResource(() => call<ThreadDetail>(p.session, "GET", `/query/v1/threads/${p.id}/`), [p.id]);
  const save = useAction();
  const [choice, setChoice] = useState<string | null>(null);
  const t = thread.data;
  const correct = (categoryId: string | null) =>
    save.run(async () => {
      const updated = await call<ThreadItem>(p.session, "PATCH", `/query/v1/threads/${p.id}/`, { category_id: categoryId });
      thread.setData({ ...(t as ThreadDetail), ...updated });
      setChoice(null);
    });
  return (
    <section>
      <p>
        <a href="#/threads">← Threads</a>
      </p>
      <ErrorNote error={thread.error ?? categories.error} />
      {t && (
        <>
          <h1>{t.first_question ?? "Thread"}</h1>
          <div class="card label">
            <p>
              Label: <strong data-testid="label">{t.category?.name ?? "unlabelled"}</strong>{" "}
              {t.label_source === "user" ? (
                <span class="badge">set by a person</span>
              ) : t.label_source === "auto" ? (
                <span class="badge">classifier{t.label_confidence != null && `, confidence ${t.label_confidence.toFixed(2)}`}</span>
              ) : null}
            </p>
            <p class="hint">
              A label set here is a user label: the classifier and backfills never overwrite it. Choose “Let the
              classifier decide” to hand the thread back to the classifier.
            </p>
            <label>
              Correct the label{" "}
              <select value={choice ?? t.category?.id ?? ""} onChange={(e) => setChoice(e.currentTarget.value)}>
                <option value="" disabled>
                  choose a category
                </option>
                {categories.data?.results.map((c) => (
                  <option value={c.id}>{c.name}</option>
                ))}
              </select>
            </label>{" "}
            <button type="button" disabled={save.busy || !choice} onClick={() => correct(choice)}>
              Save label
            </button>{" "}
            {t.label_source === "user" && (
              <button type="button" disabled={save.busy} onClick={() => correct(null)}>
                Let the classifier decide
              </button>
            )}
            <ErrorNote error={save.error} />
          </div>
          {t.messages.map((m) => (
            <article class="card exchange">
              <p class="question">
                <strong>Q:</strong> {m.question}
              </p>
              <Markdown text={m.answer} />
              {m.error && <p class="error">{m.error}</p>}
              <p class="meta">
                {m.status} · {m.latency_ms ?? "—"} ms · {when(m.created_at)}
                {m.feedback && ` · 👍 ${m.feedback.up} 👎 ${m.feedback.down}`}
              </p>
              {m.sources.length > 0 && (
                <ol class="sources">
                  {m.sources.map((s) => (
                    <li value={s.index} class={s.cited ? "cited" : ""}>
                      <strong>{[s.title, s.heading].filter(Boolean).join(" › ")}</strong> ({s.score.toFixed(2)})
                      {s.cited && " — cited"}
                      <div class="excerpt">{s.excerpt}</div>
                    </li>
                  ))}
                </ol>
              )}
            </article>
          ))}
        </>
      )}
    </section>
  );
}
