/**
 * A small Markdown renderer that builds DOM nodes and never parses HTML.
 *
 * Answers come from a language model and quote customers' documents: both are untrusted. Every piece of text
 * becomes a Text node (so `<script>` stays the seven characters it is), links keep only http(s) URLs, and
 * citations `[n]` become links to the answer's numbered source. Supported: paragraphs, `#` headings, `-`/`*`/`1.`
 * lists, fenced code, `inline code`, **bold**, *italic*, [text](https://url) and bare [n] citations.
 */

/** Where a citation `[n]` points: an element id in the same document or shadow root, or null (plain text). */
export type CitationTarget = (n: number) => string | null;

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*)|(\[[^\]\n]+\]\((https?:\/\/[^\s)]+)\))|(\[(\d{1,3})\])/g;

/** A link's URL if it is http(s), else null: `javascript:` and `data:` URLs never reach an href. */
export function safeUrl(raw: string): string | null {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function inline(parent: Node, text: string, cite: CitationTarget): void {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index ?? 0;
    if (at > last) parent.appendChild(document.createTextNode(text.slice(last, at)));
    last = at + m[0].length;
    if (m[1]) {
      const code = document.createElement("code");
      code.textContent = m[1].slice(1, -1);
      parent.appendChild(code);
    } else if (m[2]) {
      const strong = document.createElement("strong");
      inline(strong, m[2].slice(2, -2), cite);
      parent.appendChild(strong);
    } else if (m[3]) {
      const em = document.createElement("em");
      inline(em, m[3].slice(1, -1), cite);
      parent.appendChild(em);
    } else if (m[4]) {
      const label = m[4].slice(1, m[4].indexOf("]("));
      const href = safeUrl(m[5] ?? "");
      if (href) {
        const a = document.createElement("a");
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer nofollow";
        a.textContent = label;
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(label));
      }
    } else if (m[6]) {
      const n = Number(m[7]);
      const target = cite(n);
      if (target) {
        const a = document.createElement("a");
        a.href = `#${target}`;
        a.className = "cite";
        a.dataset.cite = String(n);
        a.setAttribute("aria-label", `source ${n}`);
        a.textContent = `[${n}]`;
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(m[6]));
      }
    }
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/** Render `markdown` into a fragment of safe DOM nodes. */
export function renderMarkdown(markdown: string, cite: CitationTarget = () => null): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  let para: string[] = [];
  let list: HTMLElement | null = null;
  const flush = (): void => {
    if (para.length) {
      const p = document.createElement("p");
      inline(p, para.join(" "), cite);
      out.appendChild(p);
      para = [];
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      flush();
      list = null;
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
      const pre = document.createElement("pre");
      const c = document.createElement("code");
      c.textContent = code.join("\n");
      pre.appendChild(c);
      out.appendChild(pre);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^\s*(?:[-*]|(\d+)\.)\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      list = null;
      // Headings inside an answer are subordinate to the widget's own title: h4 at most.
      const h = document.createElement(`h${Math.min(6, heading[1].length + 3)}`);
      inline(h, heading[2], cite);
      out.appendChild(h);
    } else if (item) {
      flush();
      const tag = item[1] ? "OL" : "UL";
      if (!list || list.tagName !== tag) {
        list = document.createElement(tag.toLowerCase());
        out.appendChild(list);
      }
      const li = document.createElement("li");
      inline(li, item[2], cite);
      list.appendChild(li);
    } else if (line.trim() === "") {
      flush();
      list = null;
    } else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return out;
}
