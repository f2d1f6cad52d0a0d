// The document view: a plain textarea kept in step with the server through OT (ot.js), with
// the other people's cursors drawn over it. The server orders every operation; this client
// keeps at most one in flight and buffers the rest (OtClient), exactly as OtClient.java.

import { h, hue, newId, names } from './dom.js';
import { OtClient, apply, diff, isNoop, transformIndex } from './ot.js';

const CURSOR_SEND_EVERY_MS = 120;

const $ = (id) => document.getElementById(id);

export class Documents {
  constructor(connection, me, ui) {
    this.conn = connection;
    this.me = me;
    this.ui = ui;
    this.doc = null;
    this.editor = $('editor');
    this.overlay = $('editor-overlay');
    this.recentKey = `parley.docs.${me}`;
    this.recent = JSON.parse(localStorage.getItem(this.recentKey) ?? '[]');
    this.cursorTimer = null;
    this.bindEditor();
    this.renderList();
  }

  // -------------------------------------------------------------------------------------
  // Opening and closing

  open(id) {
    if (this.doc?.id === id) return;
    this.close();
    this.doc = {
      id,
      loaded: false,
      missing: false,
      text: '',
      serverText: '',
      revision: 0,
      state: OtClient.synced(),
      outstandingId: null,
      waiting: new Map(),
      cursors: new Map(),
      owner: null,
      room: null,
      editors: [],
    };
    $('doc-title').textContent = id;
    $('doc-meta').textContent = 'Opening…';
    $('doc-sync').textContent = '';
    $('doc-missing').hidden = true;
    $('editor-wrap').hidden = false;
    $('share-form').hidden = true;
    this.editor.value = '';
    this.editor.readOnly = true;
    this.renderCursors();
    this.renderPeople();
    this.remember(id);
    if (this.conn.ready) this.subscribe(this.doc, false);
  }

  close() {
    const doc = this.doc;
    if (!doc) return;
    this.doc = null;
    if (doc.loaded) this.conn.request('doc_close', { doc: doc.id }).catch(() => {});
    this.renderList();
  }

  /** After every welcome: open the document again and catch up from our revision. */
  async handshake() {
    if (this.doc && !this.doc.missing) await this.subscribe(this.doc, true);
  }

  /**
   * Opens (subscribes to) the document. The first time, its text becomes the editor's; after
   * a reconnect the text is ignored and the operations since our revision are fetched, as
   * docs/protocol.md describes, so our unacknowledged edits survive.
   */
  async subscribe(doc, early) {
    let opened;
    try {
      opened = await this.conn.request('doc_open', { doc: doc.id }, { early });
    } catch (error) {
      if (doc !== this.doc || error.code === 'offline') return;
      this.showMissing(doc, error);
      return;
    }
    if (doc !== this.doc) return;
    doc.owner = opened.owner;
    doc.room = opened.room ?? null;
    doc.editors = opened.editors ?? [];
    if (!doc.loaded) {
      this.reset(doc, opened);
    } else {
      await this.catchUp(doc, opened, early);
    }
    this.renderMeta();
    this.renderPeople();
    this.renderList();
    this.sendCursor();
  }

  /** Takes the server's text as it is, dropping anything unacknowledged. */
  reset(doc, opened) {
    doc.loaded = true;
    doc.text = doc.serverText = opened.text;
    doc.revision = opened.revision;
    doc.state = OtClient.synced();
    doc.outstandingId = null;
    doc.waiting.clear();
    doc.cursors.clear();
    this.takeCursors(doc, opened);
    this.editor.value = opened.text;
    this.editor.readOnly = false;
    $('doc-missing').hidden = true;
    $('editor-wrap').hidden = false;
    this.renderCursors();
  }

  takeCursors(doc, opened) {
    for (const cursor of opened.cursors ?? []) {
      if (cursor.session === this.conn.session) continue;
      doc.cursors.set(`${cursor.user}/${cursor.session}`, {
        user: cursor.user,
        revision: opened.revision,
        position: cursor.position,
        selectionEnd: cursor.selectionEnd ?? cursor.position,
      });
    }
  }

  async catchUp(doc, opened, early) {
    doc.cursors.clear();
    this.takeCursors(doc, opened);
    let missed;
    try {
      missed = await this.conn.request('doc_ops', { doc: doc.id, revision: doc.revision }, { early });
    } catch (error) {
      if (doc !== this.doc) return;
      if (error.code === 'resync_required') {
        this.ui.notify(`${doc.id} changed too much while you were away; your unsaved edits were dropped.`);
        this.reset(doc, opened);
      } else if (error.code !== 'offline') {
        throw error;
      }
      return;
    }
    if (doc !== this.doc) return;
    for (const entry of missed.ops) this.receive(doc, entry);
    if (doc.state.outstanding) this.send(doc, doc.state.outstanding, doc.outstandingId, early);
  }

  async showMissing(doc, error) {
    doc.missing = true;
    $('editor-wrap').hidden = true;
    $('doc-missing').hidden = false;
    $('doc-meta').textContent = '';
    const create = $('doc-create');
    if (error.code === 'doc_not_found') {
      $('doc-missing-text').textContent = `There is no document “${doc.id}” yet.`;
      create.hidden = false;
      create.onclick = async () => {
        try {
          await this.conn.request('doc_create', { doc: doc.id, text: '' });
        } catch (failure) {
          if (failure.code !== 'doc_exists') {
            this.ui.notify(failure.message);
            return;
          }
        }
        doc.missing = false;
        await this.subscribe(doc, false);
        this.editor.focus();
      };
      create.focus();
    } else if (error.code === 'forbidden') {
      $('doc-missing-text').textContent = `You cannot open “${doc.id}”: ask its owner to add you as an editor, or join its room.`;
      create.hidden = true;
    } else {
      $('doc-missing-text').textContent = error.message;
      create.hidden = true;
    }
  }

  // -------------------------------------------------------------------------------------
  // Operations

  onPush(frame) {
    const doc = this.doc;
    if (!doc || frame.doc !== doc.id || !doc.loaded) return;
    switch (frame.type) {
      case 'doc_op':
        this.receive(doc, frame);
        break;
      case 'doc_cursor':
        this.onCursor(doc, frame);
        break;
      case 'doc_cursor_removed':
        doc.cursors.delete(`${frame.user}/${frame.session}`);
        this.renderCursors();
        this.renderPeople();
        break;
      case 'doc_editors':
        doc.owner = frame.owner;
        doc.editors = frame.editors;
        this.renderMeta();
        break;
      case 'doc_resync':
        // The server stopped following us (we fell too far behind): open again.
        this.subscribe(doc, false);
        break;
      default:
    }
  }

  /**
   * Takes revisions strictly in order: each is someone's operation or the acknowledgement of
   * ours. After a reconnect, pushes can overtake the catch-up; they wait for the gap to fill.
   */
  receive(doc, entry) {
    if (entry.revision <= doc.revision) return;
    if (entry.revision > doc.revision + 1) {
      doc.waiting.set(entry.revision, entry);
      return;
    }
    this.process(doc, entry);
    while (doc.waiting.has(doc.revision + 1)) {
      const next = doc.waiting.get(doc.revision + 1);
      doc.waiting.delete(doc.revision + 1);
      this.process(doc, next);
    }
    for (const revision of doc.waiting.keys()) if (revision <= doc.revision) doc.waiting.delete(revision);
  }

  /** One revision: the acknowledgement of our operation in flight, or someone else's. */
  process(doc, entry) {
    const revision = doc.revision + 1;
    if (doc.state.outstanding && entry.clientOpId === doc.outstandingId && (!entry.author || entry.author === this.me)) {
      doc.serverText = apply(doc.state.outstanding, doc.serverText);
      doc.revision = revision;
      this.moveCursors(doc, doc.state.outstanding, revision);
      const { state, send } = OtClient.serverAck(doc.state);
      doc.state = state;
      doc.outstandingId = null;
      if (send) this.submit(doc, send);
      else this.sendCursor();
    } else {
      doc.serverText = apply(entry.op, doc.serverText);
      doc.revision = revision;
      const { state, apply: local } = OtClient.applyServer(doc.state, entry.op);
      doc.state = state;
      this.moveCursors(doc, entry.op, revision);
      this.applyLocal(doc, local);
    }
    this.renderCursors();
    this.renderMeta();
  }

  submit(doc, op) {
    doc.outstandingId = newId('op');
    this.send(doc, op, doc.outstandingId, false);
  }

  /**
   * Sends the operation in flight, based on our revision now. Its `ok` is its revision's
   * acknowledgement. Offline, it simply waits: the reconnect sends it again, same clientOpId.
   */
  send(doc, op, clientOpId, early) {
    if (!early && !this.conn.ready) return;
    this.conn.request('doc_submit', { doc: doc.id, clientOpId, revision: doc.revision, op }, { early }).then(
      (ok) => {
        if (doc === this.doc && doc.outstandingId === clientOpId) {
          this.receive(doc, { revision: ok.revision, clientOpId, author: this.me, op: null });
        }
      },
      (error) => {
        if (doc !== this.doc || doc.outstandingId !== clientOpId) return;
        if (error.code === 'offline') return;
        if (error.code === 'timeout' || error.code === 'unavailable') {
          setTimeout(() => {
            if (doc === this.doc && doc.outstandingId === clientOpId) this.send(doc, doc.state.outstanding, clientOpId, false);
          }, 1000);
          return;
        }
        this.ui.notify(`The document refused an edit (${error.message}); reloading it.`);
        doc.loaded = false;
        this.subscribe(doc, false);
      },
    );
    this.renderMeta();
  }

  applyLocal(doc, op) {
    if (isNoop(op)) return;
    const editor = this.editor;
    const { selectionStart, selectionEnd, selectionDirection, scrollTop } = editor;
    doc.text = apply(op, doc.text);
    editor.value = doc.text;
    editor.setSelectionRange(transformIndex(op, selectionStart), transformIndex(op, selectionEnd), selectionDirection);
    editor.scrollTop = scrollTop;
    this.renderCursors();
  }

  onLocalInput() {
    const doc = this.doc;
    if (!doc || !doc.loaded) return;
    const after = this.editor.value;
    const op = diff(doc.text, after, this.editor.selectionEnd);
    if (isNoop(op)) return;
    doc.text = after;
    const { state, send } = OtClient.applyClient(doc.state, op);
    doc.state = state;
    if (send) this.submit(doc, send);
    this.renderCursors();
    this.renderMeta();
  }

  // -------------------------------------------------------------------------------------
  // Cursors

  /** Tells the others where our caret is, only when our text equals the server's revision. */
  sendCursor() {
    const doc = this.doc;
    if (!doc || !doc.loaded || doc.state.outstanding || document.activeElement !== this.editor) return;
    if (this.cursorTimer) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = null;
      const current = this.doc;
      if (!current || current.state.outstanding) return;
      const cursor = {
        doc: current.id,
        revision: current.revision,
        position: this.editor.selectionStart,
        selectionEnd: this.editor.selectionEnd,
      };
      // A cursor is worth nothing late: never queued, and a refusal is not worth a word.
      if (this.conn.ready) this.conn.request('doc_cursor', cursor).catch(() => {});
    }, CURSOR_SEND_EVERY_MS);
  }

  onCursor(doc, frame) {
    if (frame.session && frame.user === this.me && frame.session === this.conn.session) return;
    if (frame.revision < doc.revision) return;
    doc.cursors.set(`${frame.user}/${frame.session}`, {
      user: frame.user,
      revision: frame.revision,
      position: frame.position,
      selectionEnd: frame.selectionEnd ?? frame.position,
    });
    this.renderCursors();
    this.renderPeople();
  }

  /** A server operation moves every cursor that was placed on the revision before it. */
  moveCursors(doc, op, revision) {
    for (const cursor of doc.cursors.values()) {
      if (cursor.revision === revision - 1) {
        cursor.position = transformIndex(op, cursor.position);
        cursor.selectionEnd = transformIndex(op, cursor.selectionEnd);
        cursor.revision = revision;
      }
    }
  }

  /** Draws the others' cursors over the textarea, on a mirror of its text. */
  renderCursors() {
    const doc = this.doc;
    const overlay = this.overlay;
    if (!doc || !doc.loaded) {
      overlay.replaceChildren();
      return;
    }
    const pending = OtClient.pending(doc.state);
    const marks = [];
    for (const cursor of doc.cursors.values()) {
      if (cursor.revision !== doc.revision) continue;
      let position = cursor.position;
      let end = cursor.selectionEnd;
      if (pending) {
        position = transformIndex(pending, position);
        end = transformIndex(pending, end);
      }
      marks.push({ user: cursor.user, position: Math.min(position, doc.text.length), end: Math.min(end, doc.text.length) });
    }
    marks.sort((a, b) => a.position - b.position);
    const parts = [];
    let index = 0;
    for (const mark of marks) {
      parts.push(doc.text.slice(index, mark.position));
      parts.push(
        h(
          'span',
          { class: 'remote-caret', style: `--hue:${hue(mark.user)}`, dataset: { user: mark.user } },
          h('span', { class: 'remote-name' }, mark.user),
        ),
      );
      index = mark.position;
    }
    parts.push(doc.text.slice(index), '\u200b');
    overlay.replaceChildren(...parts);
    overlay.scrollTop = this.editor.scrollTop;
  }

  renderPeople() {
    const doc = this.doc;
    const people = doc ? [...new Set([...doc.cursors.values()].map((cursor) => cursor.user))].sort() : [];
    $('doc-people').replaceChildren(
      ...people.map((user) =>
        h('span', { class: 'member' }, h('span', { class: 'dot on', style: `--hue:${hue(user)}`, 'aria-hidden': 'true' }), user),
      ),
    );
  }

  renderMeta() {
    const doc = this.doc;
    if (!doc || !doc.loaded) return;
    const others = doc.editors.filter((editor) => editor !== doc.owner);
    $('doc-meta').textContent =
      `Owner ${doc.owner === this.me ? 'you' : doc.owner}` +
      (doc.room ? ` · members of #${doc.room}` : '') +
      (others.length ? ` · editors: ${names(others)}` : '');
    const sync = $('doc-sync');
    sync.dataset.revision = doc.revision;
    sync.dataset.pending = doc.state.outstanding ? 'yes' : 'no';
    sync.textContent = doc.state.outstanding
      ? `Saving… (revision ${doc.revision})`
      : `All changes saved · revision ${doc.revision}`;
    $('share-form').hidden = doc.owner !== this.me;
  }

  /** For tests: "saved:" or "pending:" and the editor's text, or null with no document open. */
  debugState() {
    const doc = this.doc;
    if (!doc || !doc.loaded) return null;
    const saved = !doc.state.outstanding && this.conn.ready && this.editor.value === doc.text;
    return (saved ? 'saved:' : 'pending:') + this.editor.value;
  }

  // -------------------------------------------------------------------------------------
  // Sidebar and editor wiring

  remember(id) {
    this.recent = [id, ...this.recent.filter((doc) => doc !== id)].slice(0, 12);
    localStorage.setItem(this.recentKey, JSON.stringify(this.recent));
    this.renderList();
  }

  renderList() {
    const current = this.doc?.id;
    this.ui.docList.replaceChildren(
      ...[...this.recent].sort().map((id) =>
        h(
          'li',
          {},
          h(
            'a',
            { href: `#doc/${id}`, class: 'nav-item', 'aria-current': id === current ? 'page' : null },
            h('span', { class: 'hash', 'aria-hidden': 'true' }, '¶'),
            h('span', { class: 'nav-label' }, id),
          ),
        ),
      ),
    );
    this.ui.docsEmpty.hidden = this.recent.length > 0;
  }

  bindEditor() {
    const editor = this.editor;
    editor.addEventListener('input', () => this.onLocalInput());
    editor.addEventListener('scroll', () => {
      this.overlay.scrollTop = editor.scrollTop;
    });
    document.addEventListener('selectionchange', () => {
      if (document.activeElement === editor) this.sendCursor();
    });
    editor.addEventListener('keydown', (event) => {
      // Tab types a tab; Escape then Tab leaves the editor, so the keyboard is never trapped.
      if (event.key === 'Tab' && !event.shiftKey && !this.escaped) {
        event.preventDefault();
        const { selectionStart, selectionEnd } = editor;
        editor.setRangeText('\t', selectionStart, selectionEnd, 'end');
        this.onLocalInput();
      }
      this.escaped = event.key === 'Escape';
    });
    $('share-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const doc = this.doc;
      const user = $('share-user').value.trim();
      if (!doc) return;
      try {
        const reply = await this.conn.request('doc_add_editor', { doc: doc.id, user });
        doc.editors = reply.editors ?? [...doc.editors, user];
        $('share-user').value = '';
        this.renderMeta();
        this.ui.notify(`${user} can now edit ${doc.id}.`);
      } catch (error) {
        this.ui.notify(`Could not add ${user}: ${error.message}`);
      }
    });
  }
}
