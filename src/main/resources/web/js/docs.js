// The document view: a plain textarea bound to the client package's ParleyDocument, which
// keeps the text in step with the server through OT (one operation in flight, the rest
// buffered, reopened and caught up after a reconnect), with the other people's cursors drawn
// over it. The page only turns each input event into an operation (TextOperation.diff) and
// shows what the document says.

import { TextOperation } from '../sdk/index.js';
import { h, hue, names } from './dom.js';
import { answered } from './retry.js';

const CURSOR_SEND_EVERY_MS = 120;

const $ = (id) => document.getElementById(id);

export class Documents {
  constructor(client, me, ui) {
    this.client = client;
    this.me = me;
    this.ui = ui;
    // The document shown: { id, doc (a ParleyDocument once open), stops (its listeners) }.
    this.view = null;
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
    if (this.view?.id === id) return;
    this.close();
    const view = { id, doc: null, stops: [] };
    this.view = view;
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
    this.load(view);
  }

  close() {
    const view = this.view;
    if (!view) return;
    this.view = null;
    for (const stop of view.stops) stop();
    view.doc?.close();
    this.renderList();
  }

  /** Opens the document (once a connection is there, if there is none now) and shows its text. */
  async load(view) {
    let doc;
    try {
      doc = await answered(this.client, () => this.client.openDocument(view.id));
    } catch (error) {
      if (view === this.view) this.showMissing(view, error);
      return;
    }
    if (view !== this.view) {
      doc.close();
      return;
    }
    view.doc = doc;
    view.stops.push(
      doc.on('change', ({ operation }) => this.onRemoteChange(operation)),
      doc.on('ack', () => {
        this.renderMeta();
        this.sendCursor();
      }),
      doc.on('cursors', () => {
        this.renderCursors();
        this.renderPeople();
      }),
      doc.on('editors', () => this.renderMeta()),
      doc.on('resync', ({ message }) => {
        this.ui.notify(`${view.id} was reloaded from the server; your unsaved edits were dropped (${message}).`);
        this.showText(doc);
      }),
      doc.on('closed', (error) => {
        if (view === this.view) this.showMissing(view, error);
      }),
    );
    this.showText(doc);
    this.renderPeople();
    this.renderList();
    this.sendCursor();
  }

  showText(doc) {
    this.editor.value = doc.text;
    this.editor.readOnly = false;
    $('doc-missing').hidden = true;
    $('editor-wrap').hidden = false;
    this.renderCursors();
    this.renderMeta();
  }

  showMissing(view, error) {
    $('editor-wrap').hidden = true;
    $('doc-missing').hidden = false;
    $('doc-meta').textContent = '';
    const create = $('doc-create');
    if (error.code === 'doc_not_found') {
      $('doc-missing-text').textContent = `There is no document “${view.id}” yet.`;
      create.hidden = false;
      create.onclick = async () => {
        try {
          await this.client.request('doc_create', { doc: view.id, text: '' });
        } catch (failure) {
          if (failure.code !== 'doc_exists') {
            this.ui.notify(failure.message);
            return;
          }
        }
        await this.load(view);
        this.editor.focus();
      };
      create.focus();
    } else if (error.code === 'forbidden') {
      $('doc-missing-text').textContent = `You cannot open “${view.id}”: ask its owner to add you as an editor, or join its room.`;
      create.hidden = true;
    } else {
      $('doc-missing-text').textContent = error.message;
      create.hidden = true;
    }
  }

  // -------------------------------------------------------------------------------------
  // Edits

  /** Someone else's operation, already in the document's text: the editor follows, the caret moved past it. */
  onRemoteChange(operation) {
    const doc = this.view?.doc;
    if (!doc) return;
    const editor = this.editor;
    const { selectionStart, selectionEnd, selectionDirection, scrollTop } = editor;
    editor.value = doc.text;
    editor.setSelectionRange(operation.transformIndex(selectionStart), operation.transformIndex(selectionEnd), selectionDirection);
    editor.scrollTop = scrollTop;
    this.renderCursors();
    this.renderMeta();
  }

  onLocalInput() {
    const doc = this.view?.doc;
    if (!doc) return;
    const op = TextOperation.diff(doc.text, this.editor.value, this.editor.selectionEnd);
    if (op.isNoop()) return;
    try {
      doc.edit(op);
    } catch (error) {
      // The document is being reloaded from the server (resync): its text comes back shortly.
      this.editor.value = doc.text;
      return;
    }
    this.renderCursors();
    this.renderMeta();
  }

  // -------------------------------------------------------------------------------------
  // Cursors

  /** Tells the others where our caret is, at most every CURSOR_SEND_EVERY_MS. */
  sendCursor() {
    if (!this.view?.doc || document.activeElement !== this.editor || this.cursorTimer) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = null;
      // The document sends it once nothing of ours is unacknowledged (then its text is the server's).
      this.view?.doc?.moveCursor(this.editor.selectionStart, this.editor.selectionEnd);
    }, CURSOR_SEND_EVERY_MS);
  }

  /** Draws the others' cursors over the textarea, on a mirror of its text. */
  renderCursors() {
    const doc = this.view?.doc;
    const overlay = this.overlay;
    if (!doc) {
      overlay.replaceChildren();
      return;
    }
    const text = doc.text;
    const marks = [...doc.cursors.values()].sort((a, b) => a.position - b.position);
    const parts = [];
    let index = 0;
    for (const mark of marks) {
      parts.push(text.slice(index, mark.position));
      parts.push(
        h(
          'span',
          { class: 'remote-caret', style: `--hue:${hue(mark.user)}`, dataset: { user: mark.user } },
          h('span', { class: 'remote-name' }, mark.user),
        ),
      );
      index = mark.position;
    }
    parts.push(text.slice(index), '\u200b');
    overlay.replaceChildren(...parts);
    overlay.scrollTop = this.editor.scrollTop;
  }

  renderPeople() {
    const doc = this.view?.doc;
    const people = doc ? [...new Set([...doc.cursors.values()].map((cursor) => cursor.user))].sort() : [];
    $('doc-people').replaceChildren(
      ...people.map((user) =>
        h('span', { class: 'member' }, h('span', { class: 'dot on', style: `--hue:${hue(user)}`, 'aria-hidden': 'true' }), user),
      ),
    );
  }

  renderMeta() {
    const doc = this.view?.doc;
    if (!doc) return;
    const others = doc.editors.filter((editor) => editor !== doc.owner);
    $('doc-meta').textContent =
      `Owner ${doc.owner === this.me ? 'you' : doc.owner}` +
      (doc.room ? ` · members of #${doc.room}` : '') +
      (others.length ? ` · editors: ${names(others)}` : '');
    const sync = $('doc-sync');
    sync.dataset.revision = doc.revision;
    sync.dataset.pending = doc.pending ? 'yes' : 'no';
    sync.textContent = doc.pending ? `Saving… (revision ${doc.revision})` : `All changes saved · revision ${doc.revision}`;
    $('share-form').hidden = doc.owner !== this.me;
  }

  /** For tests: "saved:" or "pending:" and the editor's text, or null with no document open. */
  debugState() {
    const doc = this.view?.doc;
    if (!doc) return null;
    const saved = !doc.pending && doc.isLive && this.client.welcome !== null && this.editor.value === doc.text;
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
    const current = this.view?.id;
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
      const doc = this.view?.doc;
      const user = $('share-user').value.trim();
      if (!doc) return;
      try {
        await this.client.request('doc_add_editor', { doc: doc.id, user });
        $('share-user').value = '';
        this.ui.notify(`${user} can now edit ${doc.id}.`);
      } catch (error) {
        this.ui.notify(`Could not add ${user}: ${error.message}`);
      }
    });
  }
}
