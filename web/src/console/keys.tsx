/** The project's API keys: admin keys for the console and servers, widget keys (chat only, from listed origins)
 * for the script tag, whose snippet is shown once with the new key. */
import { useState } from "preact/hooks";
import { call, type Page } from "./api";
import { ErrorNote, useAction, useResource, when, type PageProps } from "./ui";

interface Key {
  id: string;
  prefix: string;
  name: string;
  scope?: "admin" | "widget";
  origins?: string[];
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function Keys(p: PageProps) {
  const base = `/query/v1/projects/${p.session.projectId}/api-keys/`;
  const list = useResource(() => call<Page<Key>>(p.session, "GET", `${base}?limit=200`), []);
  const [form, setForm] = useState({ name: "", scope: "widget", origins: "" });
  const [created, setCreated] = useState<(Key & { key: string }) | null>(null);
  const act = useAction();
  const create = (e: Event) => {
    e.preventDefault();
    const origins = form.scope === "widget" ? form.origins.split(/[\s,]+/).filter(Boolean) : [];
    void act.run(async () => {
      setCreated(await call<Key & { key: string }>(p.session, "POST", base, { name: form.name, scope: form.scope, origins }));
      list.reload();
    });
  };
  const revoke = (k: Key) =>
    confirm(`Revoke “${k.name || k.prefix}”? Every client using it gets 401 from now on.`) &&
    act.run(async () => (await call(p.session, "DELETE", `${base}${k.id}/`), list.reload()));
  const snippet = created
    ? `<script src="${p.session.api}/widget.js" data-project-id="${p.session.projectId}" data-key="${created.key}" async></script>`
    : "";
  return (
    <section>
      <h1>API keys</h1>
      <p class="hint">
        Admin keys can do everything in this project: keep them on servers and in this console. Widget keys can only
        chat, read their own threads and rate answers, and only from the origins listed on them: they are meant to be
        public, in a page's script tag.
      </p>
      <form class="card filters" onSubmit={create} aria-label="New key">
        <label>
          Name <input value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} required />
        </label>
        <label>
          Scope
          <select value={form.scope} onChange={(e) => setForm({ ...form, scope: e.currentTarget.value })}>
            <option value="widget">widget</option>
            <option value="admin">admin</option>
          </select>
        </label>
        {form.scope === "widget" && (
          <label>
            Origins (scheme://host[:port], space-separated)
            <input
              value={form.origins}
              placeholder="https://docs.example.com"
              size={40}
              onInput={(e) => setForm({ ...form, origins: e.currentTarget.value })}
              required
            />
          </label>
        )}
        <button type="submit" disabled={act.busy}>
          Create key
        </button>
      </form>
      <ErrorNote error={act.error ?? list.error} />
      {created && (
        <div class="card" role="status">
          <p>
            The key <code>{created.key}</code> is shown once: copy it now.
          </p>
          {created.scope === "widget" && (
            <>
              <p>Paste this on the pages of {created.origins?.join(", ")}:</p>
              <pre class="snippet">{snippet}</pre>
            </>
          )}
        </div>
      )}
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Prefix</th>
            <th>Scope</th>
            <th>Origins</th>
            <th>Last used</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.data?.results.map((k) => (
            <tr>
              <td>{k.name || "—"}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{k.scope ?? "admin"}</td>
              <td>{(k.origins ?? []).join(", ") || "—"}</td>
              <td>{when(k.last_used_at)}</td>
              <td>
                {k.revoked_at ? (
                  `revoked ${when(k.revoked_at)}`
                ) : (
                  <button type="button" class="danger" onClick={() => revoke(k)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
