/** One Server-Sent Event as the stream dispatched it. */
export interface SseEvent {
  /** The `event:` field; `message` when the event named none. */
  event: string;
  /** The `data:` lines, joined by newlines. */
  data: string;
  /** The last `id:` the stream gave, at this event or before (the spec's last event ID). */
  lastEventId: string;
  /** Whether this event carried an `id:` of its own. */
  hasId: boolean;
}

/**
 * The event-stream format of the HTML standard (section "Parsing an event stream"), fed text
 * as it arrives from `fetch`'s body. Written here rather than using `EventSource` because an
 * `EventSource` can set no `Authorization` header and reconnects by itself, where this client
 * decides when and from which cursor. Lines end with CRLF, LF or CR; a line starting with `:`
 * is a comment (Parley's keep-alive); an event is dispatched at a blank line if it has data.
 * `retry:` is ignored: reconnecting is the client's business.
 */
export class SseParser {
  private buffer = '';
  /** The previous chunk ended with CR: a LF starting this one belongs to it. */
  private afterCarriageReturn = false;
  private eventType = '';
  private data: string[] = [];
  private lastEventId = '';
  private hasId = false;

  constructor(private readonly dispatch: (event: SseEvent) => void) {}

  feed(chunk: string): void {
    let text = chunk;
    if (this.afterCarriageReturn && text.startsWith('\n')) text = text.slice(1);
    this.afterCarriageReturn = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buffer.slice(start, i));
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.afterCarriageReturn = true;
        else if (this.buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatchEvent();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
          this.hasId = true;
        }
        break;
      default:
      // retry and unknown fields are ignored, as the standard says.
    }
  }

  private dispatchEvent(): void {
    const hasId = this.hasId;
    this.hasId = false;
    const type = this.eventType;
    this.eventType = '';
    if (this.data.length === 0) return;
    const data = this.data.join('\n');
    this.data = [];
    this.dispatch({ event: type || 'message', data, lastEventId: this.lastEventId, hasId });
  }
}
