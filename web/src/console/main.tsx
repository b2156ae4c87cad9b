/** The team console: sign in with a project admin key (kept in sessionStorage), then one page per route. */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { call, loadSession, saveSession, type Session } from "./api";
import { AnalyticsPage, Alerts } from "./insights";
import { Backfills, Imports, Reports } from "./jobs";
import { Keys } from "./keys";
import { Categories, Documents } from "./library";
import "./style.css";
import { Threads, ThreadView } from "./threads";
import { ErrorNote, useAction } from "./ui";

const NAV: [string, string][] = [
  ["threads", "Threads"],
  ["categories", "Categories"],
  ["documents", "Documents"],
  ["analytics", "Analytics"],
  ["alerts", "Alerts"],
  ["backfills", "Backfills"],
  ["imports", "Imports"],
  ["reports", "Reports"],
  ["keys", "Keys"],
];

/** The hash route (`#/threads/ID` -> ["threads", "ID"]): static hosting needs no server-side routes. */
function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [api, setApi] = useState(location.origin);
  const [key, setKey] = useState("");
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    const base = api.replace(/\/+$/, "");
    void act.run(async () => {
      const me = await call<{ id: string; name: string }>({ api: base, key }, "GET", "/query/v1/me/");
      onSignedIn({ api: base, key, projectId: me.id, projectName: me.name });
    });
  };
  return (
    <main class="signin">
      <h1>Threadline console</h1>
      <form class="card stack" onSubmit={submit} aria-label="Sign in">
        <label>
          API URL <input value={api} onInput={(e) => setApi(e.currentTarget.value)} required />
        </label>
        <label>
          Project admin key <input type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        </label>
        <p class="hint">The key stays in this tab's session storage and is forgotten when the tab closes.</p>
        <button type="submit" disabled={act.busy}>
          Sign in
        </button>
        <ErrorNote error={act.error} />
      </form>
    </main>
  );
}

function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const route = useRoute();
  if (!session) return <SignIn onSignedIn={(s) => (saveSession(s), setSession(s))} />;
  const [page = "threads", id] = route;
  const props = { session };
  let body;
  if (page === "threads" && id) body = <ThreadView {...props} id={id} />;
  else if (page === "categories") body = <Categories {...props} />;
  else if (page === "documents") body = <Documents {...props} />;
  else if (page === "analytics") body = <AnalyticsPage {...props} />;
  else if (page === "alerts") body = <Alerts {...props} />;
  else if (page === "backfills") body = <Backfills {...props} />;
  else if (page === "imports") body = <Imports {...props} />;
  else if (page === "reports") body = <Reports {...props} />;
  else if (page === "keys") body = <Keys {...props} />;
  else body = <Threads {...props} />;
  return (
    <>
      <header class="top">
        <strong>Threadline</strong> <span class="project">{session.projectName}</span>
        <nav aria-label="Console">
          {NAV.map(([path, label]) => (
            <a href={`#/${path}`} aria-current={page === path ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" onClick={() => (saveSession(null), setSession(null))}>
          Sign out
        </button>
      </header>
      <main key={route.join("/")}>{body}</main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
