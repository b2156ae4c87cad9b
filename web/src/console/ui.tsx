/** Small pieces every console page uses: loading a resource, showing the API's error, polling, Markdown. */
import { useEffect, useRef, useState } from "preact/hooks";
import { renderMarkdown } from "../shared/markdown";
import { ApiError, type Session } from "./api";

export interface PageProps {
  session: Session;
}

/** The API's message for a failure, never a blank screen. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof ApiError ? error.message : String(error);
  const code = error instanceof ApiError && error.status ? ` (${error.status} ${error.code})` : "";
  return (
    <p class="error" role="alert">
      {message}
      {code}
    </p>
  );
}

/** Load with `load` whenever `deps` change; `reload()` runs it again. */
export function useResource<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (value) => live && (setData(value), setError(null)),
      (err: unknown) => live && setError(err),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1), setData };
}

/** Call `tick` every `ms` while `active` (live progress of ingests, backfills and imports). */
export function usePoll(active: boolean, tick: () => void, ms = 1500): void {
  const saved = useRef(tick);
  saved.current = tick;
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [active, ms]);
}

/** Run an action, keeping its error for display; returns whether it succeeded. */
export function useAction() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

/** An answer's Markdown as safe DOM nodes (the same renderer as the widget: no HTML from the model). */
export function Markdown({ text }: { text: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.replaceChildren(renderMarkdown(text));
  }, [text]);
  return <div class="markdown" ref={ref} />;
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}
