// "Export history": a member asks for an export of the open room (export_room), which runs as
// a job on the server (docs/jobs.md, Exporting a room's history). Its progress comes as `job`
// pushes and fills a progress bar; once it has completed, the export is downloaded with the
// user's token (GET /v1/jobs/{id}/result, never a token in a URL) and offered as a link.

const EXPORT_QUEUE = 'parley.export';

export class Exports {
  constructor(client, getToken, ui) {
    this.client = client;
    this.getToken = getToken;
    this.ui = ui;
    // room → { job, url, size, error }: the newest export of each room asked from here.
    this.byRoom = new Map();
    this.roomId = null;
    ui.button.addEventListener('click', () => this.start());
    client.on('job', (job) => this.onJob(job));
  }

  /** The room shown now (null: none): its export, if any, is what the panel shows. */
  show(roomId, canExport) {
    this.roomId = roomId;
    this.ui.button.hidden = !canExport;
    this.render();
  }

  async start() {
    const room = this.roomId;
    if (!room) return;
    this.ui.button.disabled = true;
    try {
      const reply = await this.client.request('export_room', { room });
      this.update(reply.job);
    } catch (error) {
      this.byRoom.set(room, { job: null, error: error.message });
      this.render();
    } finally {
      this.ui.button.disabled = false;
    }
  }

  /** A `job` push: an export's change (pushes come in version order; a stale one is ignored). */
  onJob(job) {
    if (job.queue === EXPORT_QUEUE) this.update(job);
  }

  update(job) {
    const room = job.data?.room;
    if (!room) return;
    const known = this.byRoom.get(room);
    if (known?.job && known.job.id === job.id && known.job.version >= job.version) return;
    if (known?.url && known.job?.id !== job.id) URL.revokeObjectURL(known.url);
    const entry = known?.job?.id === job.id ? known : {};
    entry.job = job;
    entry.error = null;
    this.byRoom.set(room, entry);
    if (job.state === 'completed' && !entry.url && !entry.downloading) this.download(room, entry);
    if (room === this.roomId) this.render();
  }

  async download(room, entry) {
    entry.downloading = true;
    try {
      const response = await fetch(`/v1/jobs/${encodeURIComponent(entry.job.id)}/result`, {
        headers: { authorization: `Bearer ${await this.getToken()}` },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.message ?? `HTTP ${response.status}`);
      }
      const blob = await response.blob();
      entry.url = URL.createObjectURL(blob);
      entry.size = blob.size;
    } catch (error) {
      entry.error = `The export could not be downloaded: ${error.message}`;
    } finally {
      entry.downloading = false;
    }
    if (room === this.roomId) this.render();
  }

  render() {
    const { panel, bar, text, link } = this.ui;
    const entry = this.roomId ? this.byRoom.get(this.roomId) : null;
    panel.hidden = !entry;
    if (!entry) return;
    const job = entry.job;
    link.hidden = true;
    bar.hidden = true;
    if (entry.error) {
      text.textContent = entry.error;
      return;
    }
    const progress = job.progress ?? {};
    switch (job.state) {
      case 'waiting':
      case 'delayed':
        bar.hidden = false;
        bar.removeAttribute('value');
        text.textContent = job.attemptsMade > 0 ? `Export waiting to try again (${job.error ?? 'failed'})…` : 'Export waiting to start…';
        break;
      case 'active':
        bar.hidden = false;
        bar.value = progress.pct ?? 0;
        text.textContent = progress.total ? `Exporting… ${progress.pct}% (${progress.lines.toLocaleString()} of ${progress.total.toLocaleString()} events)` : 'Exporting…';
        break;
      case 'completed': {
        bar.hidden = false;
        bar.value = 100;
        const lines = job.result?.lines ?? 0;
        if (entry.url) {
          text.textContent = `Export ready: ${lines.toLocaleString()} events. `;
          link.href = entry.url;
          link.download = `${this.roomId}-history.ndjson`;
          link.textContent = `Download (${kilobytes(entry.size)})`;
          link.dataset.job = job.id;
          link.hidden = false;
        } else {
          text.textContent = entry.downloading ? 'Export ready, downloading…' : 'Export ready.';
        }
        break;
      }
      default:
        text.textContent = `Export ${job.state}${job.error ? `: ${job.error}` : ''}.`;
    }
  }
}

function kilobytes(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${Math.ceil(bytes / 1024).toLocaleString()} KB`;
}
