// Chat: the room list, one room's timeline, sending with pending → sent → delivered → read,
// edits and deletes, typing, presence and read receipts. Everything comes from the client
// package's pushes and replies (each room event once, in seq order, across reconnects); the
// timeline of a room is kept by seq, so a reply and a push of the same event, or a page of
// history overlapping live events, merge instead of doubling.

import { h, hue, timeOf, dayTimeOf, newId, names, ID_PATTERN } from './dom.js';
import { answered } from './retry.js';

const HISTORY_PAGE = 50;
const TYPING_SHOWN_MS = 5000;
const TYPING_SEND_EVERY_MS = 2000;
const STATUS_RANK = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3 };
const STATUS_TEXT = { failed: 'Not sent', pending: 'Sending…', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

export function directRoomId(a, b) {
  return 'dm:' + [a, b].sort().join(':');
}

function newRoom(id, me) {
  const direct = id.startsWith('dm:');
  const [, first, second] = direct ? id.split(':') : [];
  return {
    id,
    direct,
    peer: direct ? (first === me ? second : first) : null,
    exists: true,
    topic: null,
    topicSeq: 0,
    head: 0,
    readSeq: 0,
    // Its read marker is known (from the room list, or set by the first event pushed).
    followed: false,
    items: new Map(),
    bySeq: new Map(),
    seen: new Set(),
    orphans: new Map(),
    oldestSeq: null,
    hasMore: true,
    loading: false,
    loadedOnce: false,
    reads: new Map(),
    typing: new Map(),
    receipts: { delivered: 0, read: 0 },
    members: null,
    membersAsked: 0,
    membersPending: false,
    typingSentAt: 0,
    draft: '',
  };
}

export class Chat {
  constructor(client, me, ui) {
    this.client = client;
    this.me = me;
    this.ui = ui;
    this.rooms = new Map();
    // user → { online, lastSeen, told }; a user not in it is "unknown", which is not offline.
    // `told` counts presence pushes: what a push said outranks a list asked for before it.
    this.presence = new Map();
    this.presencePushes = 0;
    this.activeId = null;
    this.elements = new Map();
    this.localOrder = 0;
    this.markTimer = null;
    this.bindComposer();
    this.bindTimeline();
    client.on('rooms', ({ rooms }) => this.onRooms(rooms));
    client.on('event', (e) => this.onEvent(e));
    client.on('typing', (push) => this.onTyping(push));
    client.on('read', (push) => this.onRead(push));
    client.on('receipt', (push) => this.onReceipt(push));
    client.on('presence', (push) => this.onPresence(push));
    client.on('reload', (push) => this.onReload(push));
    client.on('resent', (resent) => this.onResent(resent));
  }

  // -------------------------------------------------------------------------------------
  // Connection lifecycle

  /**
   * Each connection starts with the room list (the client resumes every room from its newest
   * event, `roomStart: 'latest'`, so a room's past loads from history when it is opened).
   */
  onRooms(entries) {
    for (const entry of entries) {
      const room = this.room(entry.room);
      room.exists = true;
      room.followed = true;
      room.head = Math.max(room.head, entry.lastSeq ?? 0);
      room.readSeq = Math.max(room.readSeq, entry.readSeq ?? 0);
      if (entry.topic !== undefined && room.topicSeq === 0) room.topic = entry.topic;
    }
    this.renderSidebar();
  }

  onReady() {
    const room = this.active();
    // Who came and went while we were away was never pushed to us: ask the open room again
    // (unless its question is still waiting to go out on this connection).
    if (room && !room.membersPending) this.loadMembers(room);
    this.scheduleMarkRead();
  }

  /** With no connection, presence changes pass us by: what we knew is no longer known. */
  onOffline() {
    if (this.presence.size === 0) return;
    this.presence.clear();
    this.renderPresence();
  }

  onPresence(push) {
    this.presencePushes += 1;
    if (this.setPresence(push.user, { online: push.status === 'online', lastSeen: push.lastSeen, told: this.presencePushes })) {
      this.renderPresence();
    }
  }

  /** The room's position could not be trusted: its events come again from seq 1, so what is shown of it goes. */
  onReload({ room: id }) {
    const room = this.rooms.get(id);
    if (!room) return;
    for (const [key, item] of room.items) if (item.seq) room.items.delete(key);
    room.bySeq.clear();
    room.seen.clear();
    room.orphans.clear();
    room.oldestSeq = null;
    room.hasMore = true;
    room.head = 0;
    if (room.id === this.activeId) {
      this.elements.clear();
      this.ui.timeline.replaceChildren();
      this.renderRoom({ toBottom: true });
    }
    this.renderSidebar();
  }

  // -------------------------------------------------------------------------------------
  // State

  room(id) {
    let room = this.rooms.get(id);
    if (!room) {
      room = newRoom(id, this.me);
      this.rooms.set(id, room);
    }
    return room;
  }

  active() {
    return this.activeId === null ? null : this.rooms.get(this.activeId);
  }

  onEvent(e) {
    const room = this.room(e.room);
    room.exists = true;
    if (!room.followed) {
      // A room that reached us by a push (a DM, a join from another tab) starts here. When
      // what starts it is our own joining (or creating) it, nothing up to it is unread: the
      // server's read marker starts at the join too.
      room.followed = true;
      const ours = (e.kind === 'joined' || e.kind === 'created') && e.user === this.me;
      room.readSeq = Math.max(room.readSeq, ours ? e.seq : e.seq - 1);
    }
    this.apply(room, e, e.seq);
    if (e.kind === 'message') this.stopTyping(room, e.user);
    // Someone who just wrote or joined has a live session, as a rule. Not so the peer a DM's
    // first message "joins": send_dm adds them.
    const active = e.kind === 'message' || (e.kind === 'joined' && !room.direct);
    if (active && Date.now() - Date.parse(e.ts) < 60000) this.guessOnline(e.user);
    if ((e.kind === 'left' || e.kind === 'removed') && e.user === this.me) room.exists = false;
    if (room.id === this.activeId) {
      if (e.kind === 'joined' || e.kind === 'left' || e.kind === 'removed') this.loadMembers(room);
      this.renderRoom();
      this.scheduleMarkRead();
    }
    this.renderSidebar();
  }

  /**
   * Applies one timeline event. `snapshot` is the newest seq the event's source reflects: a
   * history page shows each message with every edit up to then, so older edits are skipped.
   */
  apply(room, e, snapshot) {
    if (room.seen.has(e.seq)) return;
    room.seen.add(e.seq);
    room.head = Math.max(room.head, e.seq);
    room.oldestSeq = room.oldestSeq === null ? e.seq : Math.min(room.oldestSeq, e.seq);
    switch (e.kind) {
      case 'message':
        this.addMessage(room, e, snapshot);
        break;
      case 'edited':
      case 'deleted': {
        const key = room.bySeq.get(e.target);
        if (key) this.change(room.items.get(key), e);
        else if (!room.orphans.has(e.target) || room.orphans.get(e.target).seq < e.seq) room.orphans.set(e.target, e);
        break;
      }
      default:
        // A direct conversation's creation and joins are send_dm's bookkeeping, nothing either
        // person did: shown, they would only be noise above the first message.
        if (room.direct && (e.kind === 'created' || e.kind === 'joined')) break;
        this.addSystem(room, e);
    }
  }

  addMessage(room, e, snapshot) {
    const key = e.clientMsgId ? `c:${e.user}:${e.clientMsgId}` : `s:${e.seq}`;
    let m = room.items.get(key);
    if (!m) {
      m = {
        key,
        kind: 'message',
        user: e.user,
        clientMsgId: e.clientMsgId,
        body: e.body ?? '',
        edited: !!e.edited,
        deleted: !!e.deleted,
        status: e.user === this.me ? 'sent' : null,
        version: 0,
      };
      room.items.set(key, m);
    }
    m.seq = e.seq;
    m.ts = e.ts;
    m.editSeq = Math.max(m.editSeq ?? 0, snapshot);
    room.bySeq.set(e.seq, key);
    if (e.user === this.me) {
      this.raise(m, 'sent');
      if (room.receipts.read >= e.seq) this.raise(m, 'read');
      else if (room.receipts.delivered >= e.seq) this.raise(m, 'delivered');
    }
    const orphan = room.orphans.get(e.seq);
    if (orphan) {
      room.orphans.delete(e.seq);
      this.change(m, orphan);
    }
    m.version += 1;
  }

  change(m, e) {
    if (e.seq <= (m.editSeq ?? 0)) return;
    m.editSeq = e.seq;
    if (e.kind === 'edited') {
      m.body = e.body;
      m.edited = true;
    } else {
      m.deleted = true;
      m.body = '';
    }
    m.saving = false;
    m.version += 1;
  }

  addSystem(room, e) {
    const who = e.user ?? 'someone';
    const texts = {
      created: `${who} created the room${e.topic ? ` · topic: ${e.topic}` : ''}`,
      joined: `${who} joined`,
      left: `${who} left`,
      invited: `${e.by} invited ${who}`,
      removed: `${e.by} removed ${who}`,
      topic: `${e.by ?? who} set the topic: ${e.topic}`,
    };
    if ((e.kind === 'topic' || e.kind === 'created') && e.seq > room.topicSeq) {
      room.topic = e.topic ?? null;
      room.topicSeq = e.seq;
    }
    room.items.set(`s:${e.seq}`, {
      key: `s:${e.seq}`,
      kind: 'system',
      seq: e.seq,
      user: e.user,
      ts: e.ts,
      text: texts[e.kind] ?? `${e.kind}`,
      version: 0,
    });
  }

  raise(m, status) {
    if ((STATUS_RANK[status] ?? 0) > (STATUS_RANK[m.status] ?? -2) || m.status === 'failed') {
      m.status = status;
      m.version += 1;
    }
  }

  onTyping(frame) {
    if (frame.user === this.me) return;
    const room = this.rooms.get(frame.room);
    if (!room) return;
    this.guessOnline(frame.user);
    clearTimeout(room.typing.get(frame.user));
    room.typing.set(frame.user, setTimeout(() => this.stopTyping(room, frame.user), TYPING_SHOWN_MS));
    if (room.id === this.activeId) this.renderTyping();
  }

  stopTyping(room, user) {
    if (!room.typing.has(user)) return;
    clearTimeout(room.typing.get(user));
    room.typing.delete(user);
    if (room.id === this.activeId) this.renderTyping();
  }

  onRead(frame) {
    const room = this.rooms.get(frame.room);
    if (!room) return;
    if (frame.user === this.me) {
      room.readSeq = Math.max(room.readSeq, frame.seq);
      this.renderSidebar();
      return;
    }
    this.guessOnline(frame.user);
    room.reads.set(frame.user, Math.max(room.reads.get(frame.user) ?? 0, frame.seq));
    if (room.id === this.activeId) this.renderRoom();
  }

  onReceipt(frame) {
    const room = this.rooms.get(frame.room);
    if (!room || frame.user === this.me) return;
    this.guessOnline(frame.user);
    const status = frame.status === 'read' ? 'read' : 'delivered';
    room.receipts[status] = Math.max(room.receipts[status], frame.seq);
    if (status === 'read') room.receipts.delivered = Math.max(room.receipts.delivered, frame.seq);
    for (const m of room.items.values()) {
      if (m.kind === 'message' && m.user === this.me && m.seq && m.seq <= frame.seq) this.raise(m, status);
    }
    if (room.id === this.activeId) this.renderRoom();
  }

  /**
   * Records what is known of a user's presence, and says whether what is shown changes: the
   * caller renders only then, since the sidebar is drawn anew (and loses keyboard focus).
   */
  setPresence(user, known) {
    if (user === this.me) return false;
    const before = this.presence.get(user);
    this.presence.set(user, known);
    return before?.online !== known.online || before?.lastSeen !== known.lastSeen;
  }

  /**
   * Someone active just now (writing, typing, reading) has a live session. Only a guess, so it
   * fills in an unknown and never overrides what the server said: a message can also come from
   * REST or the server publish API, with no session at all.
   */
  guessOnline(user) {
    if (user === this.me || this.presence.has(user)) return;
    this.setPresence(user, { online: true, told: 0 });
    this.renderPresence();
  }

  renderPresence() {
    this.renderSidebar();
    if (this.active()) this.renderMembers();
  }

  // -------------------------------------------------------------------------------------
  // Actions

  openRoom(id) {
    const room = this.room(id);
    const previous = this.active();
    if (previous) previous.draft = this.ui.composerInput.value;
    this.activeId = id;
    this.elements.clear();
    this.ui.timeline.replaceChildren();
    this.ui.composerInput.value = room.draft;
    this.ui.composerInput.placeholder = room.direct ? `Message ${room.peer}` : `Message #${room.id}`;
    this.ui.composerInput.setAttribute('aria-label', this.ui.composerInput.placeholder);
    this.renderRoom({ toBottom: true });
    this.renderSidebar();
    if (!room.loadedOnce) {
      room.loadedOnce = true;
      this.loadOlder(room);
    }
    this.loadMembers(room);
    this.scheduleMarkRead();
  }

  closeRoom() {
    const room = this.active();
    if (room) room.draft = this.ui.composerInput.value;
    this.activeId = null;
    this.renderSidebar();
  }

  openDirect(user) {
    const room = this.room(directRoomId(this.me, user));
    if (!room.followed && room.head === 0) room.exists = false;
    this.openRoom(room.id);
  }

  async loadOlder(room) {
    if (room.loading || !room.hasMore) return;
    room.loading = true;
    this.renderHistoryStatus();
    const fields = { limit: HISTORY_PAGE };
    if (room.oldestSeq !== null) fields.before = room.oldestSeq;
    if (room.oldestSeq === 1) {
      room.hasMore = false;
      room.loading = false;
      this.renderHistoryStatus();
      return;
    }
    try {
      const reply = await answered(this.client, () => this.client.history(room.id, fields));
      const snapshot = Math.max(room.head, ...reply.events.map((e) => e.seq));
      for (const e of reply.events) this.apply(room, e, snapshot);
      room.hasMore = reply.hasMore && reply.events.length > 0;
    } catch (error) {
      // A DM nobody wrote in yet does not exist; any other failure stops paging here.
      room.hasMore = false;
      if (error.code !== 'room_not_found' && error.code !== 'not_a_member') this.ui.notify(error.message);
    }
    room.loading = false;
    if (room.id === this.activeId) {
      this.renderRoom({ keepPosition: true });
      this.fillViewport(room);
      this.scheduleMarkRead();
    }
    this.renderSidebar();
  }

  /** Keeps loading older pages while the list is too short to scroll. */
  fillViewport(room) {
    const scroller = this.ui.scroller;
    if (room.hasMore && scroller.scrollHeight <= scroller.clientHeight + 40) this.loadOlder(room);
  }

  /**
   * Asks a room (or DM) for its members and, unless the room is big (over the server's
   * parley.chat.presence-list-limit, 200), who of them is online: presence pushes only tell
   * changes, so this is how a room just opened learns who is there. A member without `online`
   * (a big room, or their presence did not answer in time) stays unknown.
   */
  async loadMembers(room) {
    // A DM nobody has written in yet has no members to ask about.
    if (!room.exists) return;
    const asked = (room.membersAsked += 1);
    const pushesBefore = this.presencePushes;
    room.membersPending = true;
    let reply = null;
    try {
      reply = await answered(this.client, () => this.client.request('list_members', { room: room.id }));
    } catch (error) {
      // Not (or no longer) a member: there is nobody to show.
    }
    // Only the newest question's answer counts; an older one may predate a join or a leave.
    if (asked !== room.membersAsked) return;
    room.membersPending = false;
    room.members = reply ? reply.members : room.members ?? [];
    if (reply?.topic !== undefined && room.topicSeq === 0) room.topic = reply.topic;
    let changed = false;
    for (const member of reply?.members ?? []) {
      if (typeof member.online !== 'boolean') continue;
      // A push that came after we asked is newer than this answer.
      if ((this.presence.get(member.user)?.told ?? 0) > pushesBefore) continue;
      changed = this.setPresence(member.user, { online: member.online, lastSeen: member.lastSeen, told: pushesBefore }) || changed;
    }
    if (changed) this.renderSidebar();
    if (room.id === this.activeId) this.renderRoom();
  }

  sendMessage(body) {
    const room = this.active();
    if (!room || !body.trim()) return;
    const clientMsgId = newId('m');
    const m = {
      key: `c:${this.me}:${clientMsgId}`,
      kind: 'message',
      user: this.me,
      clientMsgId,
      body,
      ts: new Date().toISOString(),
      status: 'pending',
      order: (this.localOrder += 1),
      version: 0,
    };
    room.items.set(m.key, m);
    this.renderRoom({ toBottom: true });
    this.transmit(room, m);
  }

  /**
   * Sends (or sends again) a message under its one clientMsgId: the server keeps one copy. The
   * client package keeps it in its send queue (IndexedDB) until acknowledged: one that gets no
   * answer now goes out on the next connection, or after a reload (see onResent).
   */
  transmit(room, m) {
    m.status = 'pending';
    m.error = null;
    m.version += 1;
    const sending = room.direct
      ? this.client.sendDm(room.peer, m.body, m.clientMsgId)
      : this.client.send(room.id, m.body, m.clientMsgId);
    sending.then(
      (ok) => this.onSent(room, m, ok),
      (error) => this.onNotSent(room, m, error),
    );
    this.refresh(room);
  }

  onSent(room, m, ok) {
    room.exists = true;
    if (!m.seq) {
      m.seq = ok.seq;
      room.bySeq.set(ok.seq, m.key);
      m.editSeq = ok.seq;
    }
    if (ok.ts) m.ts = ok.ts;
    this.raise(m, 'sent');
    m.version += 1;
    this.refresh(room);
  }

  async onNotSent(room, m, error) {
    // Still queued (no answer came, or the server was busy): it is sent again on the next connection.
    if ((await this.client.queuedSends()).some((send) => send.clientMsgId === m.clientMsgId)) return;
    m.status = 'failed';
    m.error = error.message;
    m.version += 1;
    this.refresh(room);
  }

  /** A queued message was sent again on a new connection (by this page, or after a reload). */
  onResent({ send, reply, error }) {
    const room = this.rooms.get(send.to !== undefined ? directRoomId(this.me, send.to) : send.room);
    const m = room?.items.get(`c:${this.me}:${send.clientMsgId}`);
    if (!m) return;
    if (reply) this.onSent(room, m, reply);
    else this.onNotSent(room, m, error);
  }

  /** Shows what the send queue still holds from before a reload, as pending, where it was written. */
  async restoreQueued() {
    for (const send of await this.client.queuedSends()) {
      const room = this.room(send.to !== undefined ? directRoomId(this.me, send.to) : send.room);
      const key = `c:${this.me}:${send.clientMsgId}`;
      if (room.items.has(key)) continue;
      room.items.set(key, {
        key,
        kind: 'message',
        user: this.me,
        clientMsgId: send.clientMsgId,
        body: send.body,
        ts: new Date(send.queuedAt).toISOString(),
        status: 'pending',
        order: (this.localOrder += 1),
        version: 0,
      });
      this.refresh(room);
    }
    this.renderSidebar();
  }

  /** Messages written here and not yet stored by the server. */
  pendingCount() {
    let count = 0;
    for (const room of this.rooms.values()) {
      for (const item of room.items.values()) if (item.status === 'pending') count += 1;
    }
    return count;
  }

  editMessage(room, m, body) {
    if (!body.trim() || body === m.body) return;
    const before = { body: m.body, edited: m.edited };
    m.body = body;
    m.edited = true;
    m.saving = true;
    m.version += 1;
    this.refresh(room);
    const edit = { room: room.id, target: m.seq, clientMsgId: newId('e'), body };
    answered(this.client, () => this.client.request('edit', edit))
      .then(
        () => {
          m.saving = false;
          m.version += 1;
          this.refresh(room);
        },
        (error) => {
          Object.assign(m, before, { saving: false });
          m.version += 1;
          this.ui.notify(`Could not edit: ${error.message}`);
          this.refresh(room);
        },
      );
  }

  deleteMessage(room, m) {
    const before = { body: m.body, deleted: m.deleted };
    m.deleted = true;
    m.saving = true;
    m.version += 1;
    this.refresh(room);
    const deletion = { room: room.id, target: m.seq, clientMsgId: newId('d') };
    answered(this.client, () => this.client.request('delete', deletion)).then(
      () => {
        m.saving = false;
        m.body = '';
        m.version += 1;
        this.refresh(room);
      },
      (error) => {
        Object.assign(m, before, { saving: false });
        m.version += 1;
        this.ui.notify(`Could not delete: ${error.message}`);
        this.refresh(room);
      },
    );
  }

  async createRoom(id, visibility, topic) {
    await this.client.createRoom(id, topic ? { visibility, topic } : { visibility });
    this.room(id).exists = true;
    this.openRoom(id);
  }

  async joinRoom(id) {
    await this.client.join(id);
    this.room(id).exists = true;
    this.openRoom(id);
  }

  async invite(user) {
    await this.client.request('invite', { room: this.activeId, user });
  }

  async leaveRoom() {
    const room = this.active();
    if (!room || room.direct) return;
    try {
      await this.client.request('leave', { room: room.id });
      room.exists = false;
      location.hash = '';
    } catch (error) {
      this.ui.notify(`Could not leave: ${error.message}`);
    }
  }

  typed() {
    const room = this.active();
    const now = Date.now();
    if (!room || !room.exists || room.head === 0 || now - room.typingSentAt < TYPING_SEND_EVERY_MS) return;
    room.typingSentAt = now;
    this.client.typing(room.id);
  }

  scheduleMarkRead() {
    clearTimeout(this.markTimer);
    this.markTimer = setTimeout(() => this.markRead(), 250);
  }

  /** Marks the open room read up to its newest event, when the user can see the bottom. */
  markRead() {
    const room = this.active();
    if (!room || !this.client.welcome || document.visibilityState !== 'visible') return;
    if (room.head <= room.readSeq || !this.atBottom()) return;
    const seq = room.head;
    this.client.markRead(room.id, seq).then(
      (ok) => {
        room.readSeq = Math.max(room.readSeq, ok.readSeq);
        this.renderSidebar();
      },
      () => {},
    );
  }

  refresh(room) {
    if (room.id === this.activeId) this.renderRoom();
  }

  // -------------------------------------------------------------------------------------
  // Rendering

  unread(room) {
    return room.id === this.activeId && this.atBottom() ? 0 : Math.max(0, room.head - room.readSeq);
  }

  renderSidebar() {
    const rooms = [...this.rooms.values()].filter((room) => room.exists || room.id === this.activeId);
    const entry = (room, label, extra) => {
      const unread = this.unread(room);
      const current = room.id === this.activeId;
      return h(
        'li',
        {},
        h(
          'a',
          {
            href: `#room/${room.id}`,
            class: 'nav-item' + (unread ? ' has-unread' : ''),
            'aria-current': current ? 'page' : null,
            dataset: { room: room.id },
          },
          extra,
          h('span', { class: 'nav-label' }, label),
          unread ? h('span', { class: 'badge', 'aria-label': `${unread} unread` }, String(unread)) : null,
        ),
      );
    };
    this.ui.roomList.replaceChildren(
      ...rooms
        .filter((room) => !room.direct)
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((room) => entry(room, room.id, h('span', { class: 'hash', 'aria-hidden': 'true' }, '#'))),
    );
    this.ui.dmList.replaceChildren(
      ...rooms
        .filter((room) => room.direct)
        .sort((a, b) => a.peer.localeCompare(b.peer))
        .map((room) => entry(room, room.peer, this.presenceDot(room.peer))),
    );
    this.ui.roomsEmpty.hidden = this.ui.roomList.childElementCount > 0;
    this.ui.dmsEmpty.hidden = this.ui.dmList.childElementCount > 0;
    const total = rooms.reduce((sum, room) => sum + this.unread(room), 0);
    document.title = total ? `(${total}) Parley` : 'Parley';
    this.ui.navUnread.hidden = total === 0;
    this.ui.navUnread.textContent = String(total);
    this.ui.navUnread.setAttribute('aria-label', `${total} unread`);
  }

  /** 'online', 'offline' or 'unknown' (not told, or not followed while we were offline). */
  presenceOf(user) {
    const known = this.presence.get(user);
    return known === undefined ? 'unknown' : known.online ? 'online' : 'offline';
  }

  presenceLabel(user) {
    const state = this.presenceOf(user);
    const lastSeen = this.presence.get(user)?.lastSeen;
    if (state === 'offline') return lastSeen ? `offline, last seen ${dayTimeOf(lastSeen)}` : 'offline';
    return state === 'online' ? 'online' : 'presence unknown';
  }

  presenceDot(user) {
    const state = this.presenceOf(user);
    const label = this.presenceLabel(user);
    const shape = { online: 'on', offline: 'off', unknown: 'unknown' }[state];
    return h('span', { class: `dot ${shape}`, title: label, role: 'img', 'aria-label': label, dataset: { presence: state } });
  }

  renderRoom({ toBottom = false, keepPosition = false } = {}) {
    const room = this.active();
    if (!room) return;
    const scroller = this.ui.scroller;
    const wasAtBottom = this.atBottom();
    const previousHeight = scroller.scrollHeight;
    const previousTop = scroller.scrollTop;

    this.ui.roomTitle.textContent = room.direct ? room.peer : `#${room.id}`;
    this.ui.roomLeave.hidden = room.direct || !room.exists;
    this.ui.roomInvite.hidden = room.direct || !room.exists;
    this.ui.onRoomShown(room);
    this.ui.roomTopic.textContent = room.direct ? 'Direct message' : room.topic ?? '';
    this.renderMembers();
    this.renderHistoryStatus();
    this.reconcile(room);
    this.renderTyping();

    if (keepPosition && !wasAtBottom) {
      scroller.scrollTop = previousTop + (scroller.scrollHeight - previousHeight);
    } else if (toBottom || wasAtBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  renderMembers() {
    const room = this.active();
    if (!room) return;
    if (room.direct) {
      this.ui.roomMembers.replaceChildren(h('span', { class: 'member' }, this.presenceDot(room.peer), this.presenceText(room.peer)));
      return;
    }
    const members = room.members ?? [];
    this.ui.roomMembers.replaceChildren(
      ...members.map((member) =>
        h(
          'span',
          { class: 'member', dataset: { user: member.user } },
          member.user === this.me ? h('span', { class: 'dot on', 'aria-hidden': 'true' }) : this.presenceDot(member.user),
          member.user === this.me ? `${member.user} (you)` : member.user,
        ),
      ),
    );
  }

  presenceText(user) {
    const state = this.presenceOf(user);
    const lastSeen = this.presence.get(user)?.lastSeen;
    const text = {
      online: `${user} is online`,
      offline: `${user} is offline${lastSeen ? ` · last seen ${dayTimeOf(lastSeen)}` : ''}`,
      unknown: user,
    }[state];
    return h('span', {}, text);
  }

  renderHistoryStatus() {
    const room = this.active();
    if (!room) return;
    const status = this.ui.historyStatus;
    if (room.loading) status.textContent = 'Loading earlier messages…';
    else if (!room.hasMore) status.textContent = room.exists ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
    else status.textContent = 'Scroll up for earlier messages';
  }

  renderTyping() {
    const room = this.active();
    const who = room ? [...room.typing.keys()] : [];
    this.ui.typing.textContent = who.length ? `${names(who)} ${who.length === 1 ? 'is' : 'are'} typing…` : '';
  }

  /** The timeline in order: by seq, then messages still without one in the order sent. */
  ordered(room) {
    return [...room.items.values()].sort((a, b) => {
      if (a.seq && b.seq) return a.seq - b.seq;
      if (a.seq) return -1;
      if (b.seq) return 1;
      return a.order - b.order;
    });
  }

  /** Updates the list in place, keyed by item, so focus and scroll survive a render. */
  reconcile(room) {
    const items = this.ordered(room);
    const seenBy = this.seenBy(room, items);
    // Where a message stands is shown on your newest one, and on any not yet stored.
    const lastOwn = items.filter((item) => item.kind === 'message' && item.user === this.me && item.seq).pop();
    const list = this.ui.timeline;
    let cursor = list.firstElementChild;
    let previous = null;
    for (const item of items) {
      const continued =
        item.kind === 'message' &&
        previous?.kind === 'message' &&
        previous.user === item.user &&
        Date.parse(item.ts) - Date.parse(previous.ts) < 5 * 60 * 1000;
      const seen = seenBy.get(item.key) ?? [];
      const showStatus = item === lastOwn || item.status === 'pending' || item.status === 'failed';
      const signature = `${item.version}|${continued}|${seen.join(',')}|${item.status}|${showStatus}`;
      let el = this.elements.get(item.key);
      if (!el) {
        el = h('li');
        this.elements.set(item.key, el);
      }
      if (el.dataset.signature !== signature && !el.classList.contains('editing')) {
        this.fill(el, room, item, continued, seen, showStatus);
        el.dataset.signature = signature;
      }
      if (el === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(el, cursor);
      previous = item;
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** For each item, the other users whose read marker stops there. */
  seenBy(room, items) {
    const result = new Map();
    if (room.direct) return result;
    for (const [user, seq] of room.reads) {
      // Shown under the newest item they have read that they did not write themselves.
      let at = null;
      for (const item of items) {
        if (item.seq && item.seq <= seq && item.user !== user) at = item;
      }
      if (at) result.set(at.key, [...(result.get(at.key) ?? []), user].sort());
    }
    return result;
  }

  fill(el, room, item, continued, seen, showStatus) {
    const seenLine = seen.length ? h('div', { class: 'seen' }, `Seen by ${names(seen)}`) : null;
    if (item.kind === 'system') {
      el.className = 'sys';
      el.dataset.seq = item.seq;
      el.replaceChildren(...[h('span', {}, item.text), h('time', { datetime: item.ts }, timeOf(item.ts)), seenLine].filter(Boolean));
      return;
    }
    const own = item.user === this.me;
    el.className = ['msg', own ? 'own' : '', continued ? 'continued' : '', item.deleted ? 'deleted' : '', item.status === 'pending' ? 'pending' : '']
      .filter(Boolean)
      .join(' ');
    el.dataset.seq = item.seq ?? '';
    el.dataset.user = item.user;
    el.dataset.clientMsgId = item.clientMsgId ?? '';
    if (own) el.dataset.status = item.status;
    el.tabIndex = -1;
    const meta = continued
      ? null
      : h('div', { class: 'meta' }, h('span', { class: 'author' }, item.user), h('time', { datetime: item.ts }, timeOf(item.ts)));
    const body = item.deleted
      ? h('div', { class: 'body' }, h('em', {}, 'This message was deleted.'))
      : h('div', { class: 'body' }, item.body, item.edited ? h('span', { class: 'edited' }, ' (edited)') : null);
    const status = own && !item.deleted && showStatus ? this.statusLine(room, item, seen) : null;
    const actions =
      own && item.seq && !item.deleted && !item.saving
        ? h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', class: 'ghost', onclick: () => this.startEdit(el, room, item), 'aria-label': 'Edit message' }, 'Edit'),
            h('button', { type: 'button', class: 'ghost danger', onclick: () => this.deleteMessage(room, item), 'aria-label': 'Delete message' }, 'Delete'),
          )
        : null;
    el.replaceChildren(
      ...[
        continued
          ? h('div', { class: 'avatar spacer', 'aria-hidden': 'true' })
          : h('div', { class: 'avatar', 'aria-hidden': 'true', style: `--hue:${hue(item.user)}` }, item.user.slice(0, 1).toUpperCase()),
        h('div', { class: 'content' }, meta, body, status ?? seenLine),
        actions,
      ].filter(Boolean),
    );
  }

  statusLine(room, m, seen) {
    const retry =
      m.status === 'failed'
        ? h('button', { type: 'button', class: 'link', onclick: () => this.transmit(room, m) }, 'Retry')
        : null;
    const text = m.status === 'failed' && m.error ? `Not sent: ${m.error}` : STATUS_TEXT[m.status];
    return h(
      'div',
      { class: `status status-${m.status}` },
      text,
      retry ? ' · ' : null,
      retry,
      seen.length ? h('span', { class: 'seen' }, ` · Seen by ${names(seen)}`) : null,
    );
  }

  startEdit(el, room, m) {
    const input = h('textarea', { class: 'edit-input', rows: 2, 'aria-label': 'Edit message' });
    input.value = m.body;
    const finish = (save) => {
      el.classList.remove('editing');
      el.dataset.signature = '';
      if (save) this.editMessage(room, m, input.value);
      this.renderRoom();
      this.ui.composerInput.focus();
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        finish(false);
      }
    });
    const form = h(
      'div',
      { class: 'edit-form' },
      input,
      h(
        'div',
        { class: 'edit-hint' },
        h('button', { type: 'button', class: 'primary small', onclick: () => finish(true) }, 'Save'),
        h('button', { type: 'button', class: 'ghost small', onclick: () => finish(false) }, 'Cancel'),
        h('span', {}, 'Enter to save · Esc to cancel'),
      ),
    );
    el.classList.add('editing');
    el.querySelector('.body').replaceWith(form);
    el.querySelector('.actions')?.remove();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  /** ArrowUp in an empty composer edits your newest message. */
  editLast() {
    const room = this.active();
    if (!room) return false;
    const mine = this.ordered(room).filter((m) => m.kind === 'message' && m.user === this.me && m.seq && !m.deleted);
    const last = mine[mine.length - 1];
    if (!last) return false;
    const el = this.elements.get(last.key);
    if (!el) return false;
    this.startEdit(el, room, last);
    return true;
  }

  atBottom() {
    const s = this.ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  bindComposer() {
    const { composer, composerInput } = this.ui;
    const grow = () => {
      composerInput.style.height = 'auto';
      composerInput.style.height = `${Math.min(composerInput.scrollHeight, 200)}px`;
    };
    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      const body = composerInput.value;
      if (!body.trim()) return;
      composerInput.value = '';
      grow();
      this.sendMessage(body);
    });
    composerInput.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === 'ArrowUp' && composerInput.value === '' && this.editLast()) {
        event.preventDefault();
      }
    });
    composerInput.addEventListener('input', () => {
      grow();
      if (composerInput.value) this.typed();
    });
  }

  bindTimeline() {
    this.ui.roomLeave.addEventListener('click', () => this.leaveRoom());
    const scroller = this.ui.scroller;
    scroller.addEventListener('scroll', () => {
      const room = this.active();
      if (!room) return;
      if (scroller.scrollTop < 200) this.loadOlder(room);
      if (this.atBottom()) this.scheduleMarkRead();
    });
    document.addEventListener('visibilitychange', () => this.scheduleMarkRead());
    window.addEventListener('focus', () => this.scheduleMarkRead());
  }
}

export function validId(id) {
  return ID_PATTERN.test(id);
}
