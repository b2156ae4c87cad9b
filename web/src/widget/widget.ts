/**
 * The Threadline chat widget: one script tag on any page.
 *
 *   <script src="https://API/widget.js" data-project-id="..." data-key="..." async></script>
 *
 * Optional: data-api (the API's base URL; default: where widget.js came from), data-theme (light | dark; default:
 * the visitor's prefers-color-scheme), data-title. Everything lives in a shadow root, so the page's CSS does not
 * reach the widget and the widget's CSS does not reach the page.
 */
import { renderMarkdown, safeUrl } from "../shared/markdown";
import { readSse } from "../shared/sse";
import { STYLE } from "./style";

interface Source {
  index: number;
  title?: string;
  heading?: string | null;
  excerpt?: string;
  url?: string;
  cited?: boolean;
}

interface Feedback {
  mine?: "up" | "down" | null;
}

interface StoredMessage {
  question_answer_id: string;
  question: string;
  answer: string;
  status: string;
  sources: Source[];
  error?: string | null;
  feedback?: Feedback;
}

/** The API's one error shape, or whatever a proxy answered. */
async function errorMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    // not JSON: fall through to the status line
  }
  return `The assistant is unavailable (HTTP ${response.status}).`;
}

// A thumb drawn as SVG (Material Icons' thumb_up, Apache-2.0): emoji fonts are missing on many systems.
const THUMB =
  "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

function thumb(rating: "up" | "down"): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  if (rating === "down") svg.setAttribute("class", "down");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", THUMB);
  svg.append(path);
  return svg;
}

const NETWORK_LOST = "The connection was lost before the answer finished. Check your network and ask again.";
let instances = 0;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** `<threadline-chat>`: a launcher button and a chat panel (role=dialog) in a shadow root. */
export class ThreadlineChat extends HTMLElement {
  private api = "";
  private projectId = "";
  private key = "";
  private readonly uid = `tl${++instances}`;
  private root!: ShadowRoot;
  private launcher!: HTMLButtonElement;
  private panel!: HTMLElement;
  private log!: HTMLElement;
  private input!: HTMLTextAreaElement;
  private send!: HTMLButtonElement;
  private status!: HTMLElement;
  private busy = false;
  private restored = false;

  /** Read the configuration (attributes of the element, copied from the script tag) and build the DOM once. */
  connectedCallback(): void {
    if (this.root) return;
    this.projectId = this.getAttribute("project-id") ?? "";
    this.key = this.getAttribute("key") ?? "";
    this.api = (this.getAttribute("api") ?? "").replace(/\/+$/, "");
    this.root = this.attachShadow({ mode: "open" });
    const style = el("style");
    style.textContent = STYLE;
    const title = this.getAttribute("chat-title") ?? "Ask us anything";
    this.launcher = el("button", {
      class: "launcher",
      type: "button",
      // One name; aria-expanded says whether the panel is open (a toggle button, as screen readers expect).
      "aria-label": "Chat with us",
      "aria-expanded": "false",
      "aria-controls": `${this.uid}-panel`,
    });
    this.launcher.appendChild(el("span", { "aria-hidden": "true" }, "?"));
    this.panel = el("section", {
      class: "panel",
      id: `${this.uid}-panel`,
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": `${this.uid}-title`,
      hidden: "",
    });
    const header = el("header");
    header.append(el("h2", { id: `${this.uid}-title` }, title));
    const close = el("button", { type: "button", class: "close", "aria-label": "Close the chat" }, "×");
    header.append(close);
    // role=log is an implicit polite live region: screen readers announce a new message once it is complete
    // (aria-busy is set on the answer while it streams, so tokens are not read one by one).
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
    this.status = el("p", { class: "status", role: "status" });
    const form = el("form");
    this.input = el("textarea", {
      rows: "2",
      "aria-label": "Your question",
      placeholder: "Ask a question…",
      maxlength: "4000",
    });
    this.send = el("button", { type: "submit", class: "send" }, "Send");
    form.append(this.input, this.send);
    const fresh = el("button", { type: "button", class: "link new" }, "New conversation");
    this.panel.append(header, this.log, this.status, form, fresh);
    this.root.append(style, this.launcher, this.panel);

    this.launcher.addEventListener("click", () => this.toggle(this.panel.hidden));
    close.addEventListener("click", () => this.toggle(false));
    fresh.addEventListener("click", () => this.newConversation());
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.toggle(false);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.ask(this.input.value.trim());
    });
    this.log.addEventListener("click", (e) => this.onLogClick(e));
    if (!this.projectId || !this.key) this.showStatus("This chat is not configured (data-project-id and data-key).");
  }

  private get storageKey(): string {
    return `threadline:thread:${this.projectId}`;
  }

  private get threadId(): string | null {
    try {
      return localStorage.getItem(this.storageKey);
    } catch {
      return null; // storage blocked (private mode, sandboxed iframe): the thread lasts as long as the page
    }
  }

  private set threadId(value: string | null) {
    try {
      if (value) localStorage.setItem(this.storageKey, value);
      else localStorage.removeItem(this.storageKey);
    } catch {
      // see the getter
    }
  }

  /** Open or close the panel; focus goes to the question when it opens and back to the launcher when it closes. */
  toggle(open: boolean): void {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      this.input.focus();
      if (!this.restored) void this.restore();
    } else {
      this.launcher.focus();
    }
  }

  private headers(json: boolean): Record<string, string> {
    return json ? { "X-API-KEY": this.key, "Content-Type": "application/json" } : { "X-API-KEY": this.key };
  }

  private showStatus(message: string): void {
    this.status.textContent = message;
  }

  /** The thread kept in localStorage, read back from the API (it survives reloads). */
  private async restore(): Promise<void> {
    this.restored = true;
    const id = this.threadId;
    if (!id) return;
    try {
      const response = await fetch(`${this.api}/query/v1/threads/${encodeURIComponent(id)}/`, {
        headers: this.headers(false),
      });
      if (response.status === 404) {
        this.threadId = null; // deleted, or another key's: start afresh
        return;
      }
      if (!response.ok) return this.showStatus(await errorMessage(response));
      const thread = (await response.json()) as { messages: StoredMessage[] };
      for (const m of thread.messages) {
        this.addQuestion(m.question);
        const bubble = this.addAnswer();
        this.fillAnswer(bubble, m.answer, m.sources ?? []);
        if (m.status === "failed") this.markFailed(bubble, m.error ?? "The assistant could not answer.");
        else this.addFeedback(bubble, m.question_answer_id, m.feedback?.mine ?? null);
      }
      this.log.scrollTop = this.log.scrollHeight;
    } catch {
      this.showStatus(NETWORK_LOST);
    }
  }

  private newConversation(): void {
    this.threadId = null;
    this.log.replaceChildren();
    this.showStatus("");
    this.input.focus();
  }

  private addQuestion(text: string): void {
    this.log.append(el("div", { class: "msg user" }, text));
  }

  private addAnswer(): HTMLElement {
    const bubble = el("div", { class: "msg bot" });
    bubble.append(el("div", { class: "body" }));
    this.log.append(bubble);
    return bubble;
  }

  private citeId(bubble: HTMLElement, n: number): string {
    return `${bubble.dataset.id ?? "a"}-src-${n}`;
  }

  private fillAnswer(bubble: HTMLElement, text: string, sources: Source[] | null): void {
    if (!bubble.dataset.id) bubble.dataset.id = `${this.uid}-${this.log.children.length}`;
    const known = new Set((sources ?? []).map((s) => s.index));
    const body = bubble.querySelector(".body") as HTMLElement;
    body.replaceChildren(renderMarkdown(text, (n) => (known.has(n) ? this.citeId(bubble, n) : null)));
    if (sources && sources.length) {
      bubble.querySelector(".sources")?.remove();
      const list = el("ol", { class: "sources", "aria-label": "Sources" });
      for (const s of sources) {
        const li = el("li", { id: this.citeId(bubble, s.index), value: String(s.index) });
        const name = [s.title, s.heading].filter(Boolean).join(" › ") || `Source ${s.index}`;
        const href = s.url ? safeUrl(s.url) : null;
        if (href) li.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, name));
        else li.append(el("strong", {}, name));
        if (s.excerpt) li.append(el("span", { class: "excerpt" }, s.excerpt));
        if (s.cited) li.classList.add("cited");
        list.append(li);
      }
      bubble.append(list);
    }
  }

  private markFailed(bubble: HTMLElement, message: string): void {
    bubble.classList.add("failed");
    bubble.append(el("p", { class: "error", role: "alert" }, message));
  }

  private addFeedback(bubble: HTMLElement, answerId: string, mine: "up" | "down" | null): void {
    const row = el("div", { class: "feedback", role: "group", "aria-label": "Was this answer helpful?" });
    for (const [rating, label] of [
      ["up", "Helpful"],
      ["down", "Not helpful"],
    ] as const) {
      const b = el("button", { type: "button", "aria-label": label, "aria-pressed": String(mine === rating) });
      b.append(thumb(rating));
      b.dataset.rating = rating;
      b.dataset.answer = answerId;
      row.append(b);
    }
    bubble.append(row);
  }

  private onLogClick(e: Event): void {
    const target = e.target as HTMLElement;
    const cite = target.closest("a.cite") as HTMLAnchorElement | null;
    if (cite) {
      // Anchors do not navigate inside a shadow root: move to the source ourselves.
      e.preventDefault();
      const item = this.root.getElementById(cite.hash.slice(1));
      item?.scrollIntoView({ block: "nearest" });
      item?.classList.add("flash");
      return;
    }
    const vote = target.closest("button[data-rating]") as HTMLButtonElement | null;
    if (vote) void this.rate(vote);
  }

  private async rate(button: HTMLButtonElement): Promise<void> {
    const row = button.parentElement as HTMLElement;
    const rating = button.dataset.rating;
    try {
      const response = await fetch(`${this.api}/query/v1/answers/${button.dataset.answer}/feedback/`, {
        method: "POST",
        headers: this.headers(true),
        body: JSON.stringify({ rating, comment: null }),
      });
      if (!response.ok) return this.showStatus(await errorMessage(response));
      for (const b of row.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
      this.showStatus("Thanks for your feedback.");
    } catch {
      this.showStatus("Your rating could not be sent: the network is unreachable.");
    }
  }

  /** Ask `question` in the current thread (a new one if none), streaming the answer into the log. */
  async ask(question: string): Promise<void> {
    if (!question || this.busy) return;
    this.busy = true;
    this.send.disabled = true;
    this.input.value = "";
    this.showStatus("");
    this.addQuestion(question);
    const bubble = this.addAnswer();
    bubble.setAttribute("aria-busy", "true");
    const thread = this.threadId;
    const url = thread
      ? `${this.api}/query/v1/threads/${encodeURIComponent(thread)}/chat/stream/`
      : `${this.api}/query/v1/projects/${encodeURIComponent(this.projectId)}/chat/stream/`;
    let text = "";
    let answerId = "";
    let finished = false;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { ...this.headers(true), Accept: "text/event-stream" },
        body: JSON.stringify({ query: question }),
      });
      if (response.status === 404 && thread) this.threadId = null; // the stored thread is gone: next ask starts anew
      if (!response.ok || !response.body) {
        this.markFailed(bubble, await errorMessage(response));
        finished = true;
        return;
      }
      for await (const { event, data } of readSse(response.body)) {
        const d = data as Record<string, unknown>;
        if (event === "meta") {
          this.threadId = String(d.thread_id);
          answerId = String(d.question_answer_id);
        } else if (event === "token") {
          text += String(d.text ?? "");
          this.fillAnswer(bubble, text, null);
          this.log.scrollTop = this.log.scrollHeight;
        } else if (event === "sources") {
          this.fillAnswer(bubble, text, (d.sources as Source[]) ?? []);
        } else if (event === "done") {
          finished = true;
          this.addFeedback(bubble, answerId, null);
        } else if (event === "error") {
          finished = true;
          this.markFailed(bubble, String(d.message ?? "The assistant could not answer."));
        }
      }
      if (!finished) this.markFailed(bubble, NETWORK_LOST);
    } catch {
      if (!finished) this.markFailed(bubble, NETWORK_LOST);
    } finally {
      bubble.setAttribute("aria-busy", "false");
      this.busy = false;
      this.send.disabled = false;
      this.log.scrollTop = this.log.scrollHeight;
    }
  }
}

/** Mount one widget from the script tag that loaded this file. */
function boot(): void {
  if (!customElements.get("threadline-chat")) customElements.define("threadline-chat", ThreadlineChat);
  const script = document.currentScript as HTMLScriptElement | null;
  if (!script) return;
  const node = document.createElement("threadline-chat");
  const api = script.dataset.api ?? new URL(script.src, location.href).origin;
  node.setAttribute("api", api);
  node.setAttribute("project-id", script.dataset.projectId ?? "");
  node.setAttribute("key", script.dataset.key ?? "");
  if (script.dataset.title) node.setAttribute("chat-title", script.dataset.title);
  if (script.dataset.theme) node.setAttribute("data-theme", script.dataset.theme);
  const mount = (): void => void document.body.appendChild(node);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
}

boot();
