/** The project's categories (the classifier's labels) and its documents (what answers are grounded in). */
import { useState } from "preact/hooks";
import { call, type Page } from "./api";
import { useCategories, type Category } from "./threads";
import { ErrorNote, useAction, usePoll, useResource, when, type PageProps } from "./ui";

function CategoryForm(
  p: PageProps & { category?: Category; onSaved: (c: Category) => void; onCancel?: () => void },
) {
  const [name, setName] = useState(p.category?.name ?? "");
  const [description, setDescription] = useState(p.category?.description ?? "");
  const [examples, setExamples] = useState((p.category?.examples ?? []).join("\n"));
  const save = useAction();
  const base = `/query/v1/projects/${p.session.projectId}/categories/`;
  const submit = (e: Event) => {
    e.preventDefault();
    const body = { name, description, examples: examples.split("\n").map((x) => x.trim()).filter(Boolean) };
    void save.run(async () => {
      const saved = p.category
        ? await call<Category>(p.session, "PATCH", `${base}${p.category.id}/`, body)
        : await call<Category>(p.session, "POST", base, body);
      p.onSaved(saved);
      if (!p.category) (setName(""), setDescription(""), setExamples(""));
    });
  };
  return (
    <form class="card stack" onSubmit={submit} aria-label={p.category ? `Edit ${p.category.name}` : "New category"}>
      <label>
        Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
      </label>
      <label>
        Description
        <textarea value={description} onInput={(e) => setDescription(e.currentTarget.value)} rows={2} />
      </label>
      <label>
        Examples (one per line, up to 20)
        <textarea value={examples} onInput={(e) => setExamples(e.currentTarget.value)} rows={3} />
      </label>
      <div>
        <button type="submit" disabled={save.busy}>
          {p.category ? "Save" : "Create category"}
        </button>{" "}
        {p.onCancel && (
          <button type="button" onClick={p.onCancel}>
            Cancel
          </button>
        )}
      </div>
      <ErrorNote error={save.error} />
    </form>
  );
}

export function Categories(p: PageProps) {
  const list = useCategories(p);
  const [editing, setEditing] = useState<string | null>(null);
  const [outcome, setOutcome] = useState("");
  const remove = useAction();
  const del = (c: Category) => {
    const sure = confirm(
      `Delete “${c.name}”? Threads labelled with it become unlabelled and are queued for the classifier to ` +
        `label again with the remaining categories; user labels on it are cleared too. This cannot be undone.`,
    );
    if (!sure) return;
    void remove.run(async () => {
      const r = await call<{ threads_cleared: number; threads_queued: number }>(
        p.session,
        "DELETE",
        `/query/v1/projects/${p.session.projectId}/categories/${c.id}/`,
      );
      setOutcome(`Deleted “${c.name}”: ${r.threads_cleared} threads cleared, ${r.threads_queued} queued for relabelling.`);
      list.reload();
    });
  };
  return (
    <section>
      <h1>Categories</h1>
      <p class="hint">
        The classifier labels each new thread with the closest category (by its name, description and examples).
        Deleting a category unlabels its threads and queues them to be labelled again.
      </p>
      <ErrorNote error={list.error ?? remove.error} />
      {outcome && <p role="status">{outcome}</p>}
      {list.data?.results.map((c) =>
        editing === c.id ? (
          <CategoryForm
            session={p.session}
            category={c}
            onSaved={() => (setEditing(null), list.reload())}
            onCancel={() => setEditing(null)}
          />
        ) : (
          <div class="card category" data-category={c.name}>
            <h2>{c.name}</h2>
            <p>{c.description || <em>no description</em>}</p>
            {c.examples.length > 0 && (
              <ul>
                {c.examples.map((x) => (
                  <li>{x}</li>
                ))}
              </ul>
            )}
            <button type="button" onClick={() => setEditing(c.id)}>
              Edit
            </button>{" "}
            <button type="button" class="danger" onClick={() => del(c)}>
              Delete
            </button>
          </div>
        ),
      )}
      <h2>New category</h2>
      <CategoryForm session={p.session} onSaved={() => list.reload()} />
    </section>
  );
}

interface DocumentItem {
  id: string;
  title: string;
  content_type: string;
  size_bytes: number;
  status: string;
  error: string | null;
  chunk_count: number;
  created_at: string;
}

export function Documents(p: PageProps) {
  const base = `/query/v1/projects/${p.session.projectId}/documents/`;
  const list = useResource(() => call<Page<DocumentItem>>(p.session, "GET", `${base}?limit=200`), []);
  const upload = useAction();
  const remove = useAction();
  const pending = list.data?.results.some((d) => d.status !== "ready" && d.status !== "failed") ?? false;
  usePoll(pending, list.reload);
  const submit = (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    void upload.run(async () => {
      await call(p.session, "POST", base, new FormData(form));
      form.reset();
      list.reload();
    });
  };
  return (
    <section>
      <h1>Documents</h1>
      <form class="card" onSubmit={submit} aria-label="Upload a document">
        <label>
          File (PDF, Word, Markdown, reStructuredText, HTML or text) <input type="file" name="file" required />
        </label>{" "}
        <label>
          Title <input name="title" placeholder="optional" />
        </label>{" "}
        <button type="submit" disabled={upload.busy}>
          Upload
        </button>
        <ErrorNote error={upload.error} />
      </form>
      <ErrorNote error={list.error ?? remove.error} />
      <table>
        <thead>
          <tr>
            <th>Title</th>
            <th>Status</th>
            <th>Chunks</th>
            <th>Size</th>
            <th>Added</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.data?.results.map((d) => (
            <tr data-document={d.title}>
              <td>{d.title}</td>
              <td>
                <span class={`status ${d.status}`}>{d.status}</span>
                {d.error && <div class="error">{d.error}</div>}
              </td>
              <td>{d.chunk_count}</td>
              <td>{(d.size_bytes / 1024).toFixed(1)} KB</td>
              <td>{when(d.created_at)}</td>
              <td>
                <button
                  type="button"
                  class="danger"
                  onClick={() =>
                    confirm(`Delete “${d.title}”? Answers will no longer draw on it.`) &&
                    remove.run(async () => (await call(p.session, "DELETE", `${base}${d.id}/`), list.reload()))
                  }
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
