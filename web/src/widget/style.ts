/** The widget's CSS, scoped to its shadow root. `:host { all: initial }` stops the page's inherited styles. */
export const STYLE = `
:host{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
--bg:#fff;--fg:#1b1f24;--muted:#5b6472;--line:#d9dde3;--accent:#2457d6;--accent-fg:#fff;--user:#eef2fb;--err:#b3261e;--cite:#e8eefc;color:var(--fg)}
@media (prefers-color-scheme:dark){:host{--bg:#16191d;--fg:#e8eaed;--muted:#a3abb6;--line:#353a42;--accent:#7aa2ff;--accent-fg:#0b0d10;--user:#232a36;--err:#ff8a80;--cite:#26324a}}
:host([data-theme=light]){--bg:#fff;--fg:#1b1f24;--muted:#5b6472;--line:#d9dde3;--accent:#2457d6;--accent-fg:#fff;--user:#eef2fb;--err:#b3261e;--cite:#e8eefc}
:host([data-theme=dark]){--bg:#16191d;--fg:#e8eaed;--muted:#a3abb6;--line:#353a42;--accent:#7aa2ff;--accent-fg:#0b0d10;--user:#232a36;--err:#ff8a80;--cite:#26324a}
*{box-sizing:border-box}
button{font:inherit;cursor:pointer}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.launcher{width:56px;height:56px;border-radius:50%;border:0;background:var(--accent);color:var(--accent-fg);font-size:24px;font-weight:700;box-shadow:0 4px 14px rgba(0,0,0,.25);float:right}
.panel{position:absolute;right:0;bottom:70px;width:min(380px,calc(100vw - 40px));height:min(560px,calc(100vh - 110px));display:flex;flex-direction:column;background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:12px;box-shadow:0 10px 30px rgba(0,0,0,.25);overflow:hidden}
.panel[hidden]{display:none}
header{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;border-bottom:1px solid var(--line)}
h2{font-size:15px;margin:0}
.close{border:0;background:none;color:var(--fg);font-size:22px;line-height:1;padding:2px 6px}
.log{flex:1;overflow-y:auto;padding:12px 14px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:92%;padding:8px 11px;border-radius:10px;word-wrap:break-word}
.user{align-self:flex-end;background:var(--user);white-space:pre-wrap}
.bot{align-self:flex-start;border:1px solid var(--line)}
.bot p{margin:0 0 6px}.bot p:last-child{margin-bottom:0}
.bot pre{overflow-x:auto;background:var(--user);padding:6px;border-radius:6px}
.bot code{font-family:ui-monospace,Menlo,monospace;font-size:12.5px}
.bot h4,.bot h5,.bot h6{margin:6px 0 4px;font-size:14px}
.bot ul,.bot ol{margin:4px 0;padding-left:20px}
a{color:var(--accent)}
a.cite{font-size:11px;vertical-align:super;text-decoration:none;background:var(--cite);padding:0 3px;border-radius:4px;margin-left:1px}
.sources{margin:8px 0 0;padding:6px 0 0 20px;border-top:1px dashed var(--line);font-size:12.5px;color:var(--muted)}
.sources li{margin:2px 0}.sources li.flash{background:var(--cite)}
.sources strong{color:var(--fg);font-weight:600}
.excerpt{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:300px}
.feedback{display:flex;gap:6px;margin-top:6px}
.feedback button{border:1px solid var(--line);background:none;border-radius:6px;padding:1px 7px;font-size:13px;color:var(--fg)}
.feedback button{display:inline-flex;align-items:center;padding:3px 7px}
.feedback svg{width:15px;height:15px;fill:currentColor}.feedback svg.down{transform:rotate(180deg)}
.feedback button[aria-pressed=true]{background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}
.error{color:var(--err);margin:6px 0 0}
.status{margin:0;padding:0 14px;min-height:1.2em;font-size:12.5px;color:var(--muted)}
form{display:flex;gap:8px;padding:8px 14px}
textarea{flex:1;resize:none;font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:6px 8px}
.send{border:0;border-radius:8px;background:var(--accent);color:var(--accent-fg);padding:0 14px;font-weight:600}
.send:disabled{opacity:.6;cursor:wait}
.link{border:0;background:none;color:var(--muted);font-size:12px;padding:0 14px 10px;text-align:left;text-decoration:underline}
`;
