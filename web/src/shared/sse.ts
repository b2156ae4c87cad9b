/**
 * Server-Sent Events read from a fetch() body: EventSource cannot send the X-API-KEY header nor POST a body.
 */

/** One event: its name (`message` when the server gave none) and its parsed JSON data. */
export interface SseEvent {
  event: string;
  data: unknown;
}

/** Yield each event of an SSE body as it arrives (the stream is read chunk by chunk, never buffered whole). */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // stream: true keeps a multi-byte character split across two chunks whole.
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) as unknown };
    }
  }
}
