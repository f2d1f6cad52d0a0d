// The web client's entry point: sign-in, the shell (sidebar, views, dialogs, offline
// banner), navigation by URL hash, and the test hooks on window.parley. The connection
// (heartbeats, reconnect, resume, token refresh, the offline send queue) is the TypeScript
// client package's ParleyClient (clients/js), built into ../sdk/ with the node.

import { IndexedDBSendStore, ParleyClient } from '../sdk/index.js';
import { Chat, validId } from './chat.js';
import { Documents } from './docs.js';
import { Exports } from './exports.js';

const USER_KEY = 'parley.user';
const $ = (id) => document.getElementById(id);

/** Asks the node for a dev token (the dev profile's POST /v1/dev/token). */
async function devToken(user) {
  let response;
  try {
    response = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
  } catch (error) {
    throw new Error('The server cannot be reached.');
  }
  if (response.status === 404) throw new Error('This server does not issue development sign-ins.');
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message ?? `Sign-in failed (HTTP ${response.status}).`);
  return { ...body, receivedAt: Date.now() };
}

function showLogin(message) {
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('login-name').value = localStorage.getItem(USER_KEY) ?? '';
  $('login-name').focus();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('login-name').value.trim();
  $('login-submit').disabled = true;
  try {
    const token = await devToken(name);
    localStorage.setItem(USER_KEY, token.user);
    start(token);
  } catch (error) {
    $('login-error').textContent = error.message;
  } finally {
    $('login-submit').disabled = false;
  }
});

/**
 * The last frames each way and each socket's end, for window.parley.frames() (the tests read
 * it; it is there in the console too). The client package takes the WebSocket class to use, so
 * the page hands it the browser's own, recording as it goes.
 */
class Trace {
  constructor() {
    this.lines = [];
    this.socket = null;
    const trace = this;
    this.WebSocket = class TracedWebSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols);
        trace.socket = this;
        this.addEventListener('message', (event) => trace.record('←', event.data));
        this.addEventListener('close', (event) => {
          if (!this.closedHere) trace.record('×', `closed by the server or the network (${event.code})`);
        });
      }

      send(data) {
        trace.record('→', data);
        super.send(data);
      }

      close(code, reason) {
        if (!this.closedHere) trace.record('×', 'closed by the client');
        this.closedHere = true;
        super.close(code, reason);
      }
    };
  }

  record(direction, text) {
    this.lines.push(`${direction} ${text}`);
    if (this.lines.length > 400) this.lines.splice(0, this.lines.length - 400);
  }
}

function start(initialToken) {
  const me = initialToken.user;
  let token = initialToken;
  $('login').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = me;

  const ui = {
    roomList: $('room-list'),
    dmList: $('dm-list'),
    roomsEmpty: $('rooms-empty'),
    dmsEmpty: $('dms-empty'),
    roomTitle: $('room-title'),
    roomTopic: $('room-topic'),
    roomMembers: $('room-members'),
    roomLeave: $('room-leave'),
    roomInvite: $('room-invite'),
    scroller: $('timeline-scroll'),
    timeline: $('timeline'),
    historyStatus: $('history-status'),
    typing: $('typing'),
    composer: $('composer'),
    composerInput: $('composer-input'),
    navUnread: $('nav-unread'),
    notify,
    // The room shown changed: its export (if any) is what the export panel shows.
    onRoomShown: (room) => exports.show(room ? room.id : null, Boolean(room?.exists)),
  };

  /** The token for each connection and refresh: renewed once less than a third of its life is left. */
  const currentToken = async () => {
    const left = Date.parse(token.expiresAt) - Date.now();
    if (left < (Date.parse(token.expiresAt) - token.receivedAt) / 3) token = await devToken(me);
    return token.token;
  };
  const trace = new Trace();
  const client = new ParleyClient({
    url: location.origin,
    token: currentToken,
    WebSocket: trace.WebSocket,
    // Documents need the WebSocket; the page does not fall back to SSE or long-polling.
    transports: ['websocket'],
    // A room's past is loaded from history when it is opened, not pushed as unread.
    roomStart: 'latest',
    // One queue per user: another user signing in on this browser must not send these.
    sendStore: new IndexedDBSendStore(`parley-sends.${me}`),
  });
  const chat = new Chat(client, me, ui);
  const docs = new Documents(client, me, { notify, docList: $('doc-list'), docsEmpty: $('docs-empty') });
  const exports = new Exports(client, currentToken, {
    button: $('room-export'),
    panel: $('export-panel'),
    bar: $('export-progress'),
    text: $('export-text'),
    link: $('export-download'),
  });

  const status = { state: 'connecting', retryAt: 0, wasOnline: false };
  client.on('state', ({ state, delay }) => {
    status.state = { open: 'online', connecting: 'connecting', reconnecting: 'offline', closed: 'offline' }[state];
    status.retryAt = state === 'reconnecting' ? Date.now() + delay : 0;
    if (state === 'open') status.wasOnline = true;
    showStatus(status, chat);
    if (state === 'open') chat.onReady();
    else if (state === 'reconnecting') chat.onOffline();
  });
  client.on('error', (error) => console.warn('parley:', error.message));

  $('sign-out').addEventListener('click', () => {
    client.close();
    localStorage.removeItem(USER_KEY);
    location.hash = '';
    location.reload();
  });
  $('retry-now').addEventListener('click', () => client.retryNow());

  bindDialogs(chat, docs, me);
  bindNavigation(chat, docs);
  bindKeyboard();

  window.parley = {
    user: me,
    client,
    /** Test hook: cuts the socket as a network would; the client reconnects by itself. */
    debugDropSocket: () => trace.socket?.close(),
    state: () => status.state,
    // Milliseconds until the next attempt the backoff timer would make (while offline).
    nextAttemptIn: () => (status.state === 'offline' ? Math.max(0, status.retryAt - Date.now()) : 0),
    frames: () => trace.lines.join('\n'),
    documentState: () => docs.debugState(),
  };

  // It connects and keeps reconnecting; it gives up only when the server closes for good (1008, 4429).
  client.connect().catch((error) => notify(error.message));
  chat.restoreQueued();
  route(chat, docs);
}

// ---------------------------------------------------------------------------------------
// Connection status

let countdown = null;

function showStatus(status, chat) {
  const { state, retryAt } = status;
  $('conn-status').dataset.state = state;
  $('conn-text').textContent = { online: 'Online', connecting: 'Connecting…', offline: 'Offline' }[state];
  document.body.dataset.connection = state;
  clearInterval(countdown);
  const banner = $('offline-banner');
  // The first connection of a page is not an outage; only a lost one earns the banner.
  if (state === 'online' || !status.wasOnline) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  const update = () => {
    const pending = chat.pendingCount();
    const queued = pending ? ` ${pending} waiting to send.` : '';
    const seconds = Math.ceil((retryAt - Date.now()) / 1000);
    $('offline-text').textContent =
      state === 'connecting' || seconds <= 0
        ? `Reconnecting…${queued}`
        : navigator.onLine === false
          ? `You are offline: this device has no network. Parley reconnects as soon as it is back; what you send now goes out then.${queued}`
          : `You are offline. Trying again in ${seconds} s; what you send now goes out when the connection is back.${queued}`;
  };
  update();
  countdown = setInterval(update, 1000);
}

let noticeTimer = null;

function notify(message) {
  const notice = $('notice');
  notice.textContent = message;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.hidden = true;
  }, 6000);
}

// ---------------------------------------------------------------------------------------
// Navigation: #room/<id> and #doc/<id> (ids are plain URL characters, dm ids add ":")

function route(chat, docs) {
  const [kind, raw] = location.hash.slice(1).split('/');
  const id = raw ? decodeURIComponent(raw) : '';
  const show = (view) => {
    $('empty-view').hidden = view !== 'empty';
    $('room-view').hidden = view !== 'room';
    $('doc-view').hidden = view !== 'doc';
    document.body.classList.remove('nav-open');
    $('nav-toggle').setAttribute('aria-expanded', 'false');
  };
  if (kind === 'room' && id) {
    docs.close();
    show('room');
    if (chat.activeId !== id) chat.openRoom(id);
    $('composer-input').focus();
  } else if (kind === 'doc' && validId(id)) {
    chat.closeRoom();
    show('doc');
    docs.open(id);
  } else {
    chat.closeRoom();
    docs.close();
    show('empty');
  }
}

function bindNavigation(chat, docs) {
  window.addEventListener('hashchange', () => route(chat, docs));
  $('nav-toggle').addEventListener('click', () => {
    const open = document.body.classList.toggle('nav-open');
    $('nav-toggle').setAttribute('aria-expanded', String(open));
    if (open) $('sidebar').querySelector('a, button')?.focus();
  });
}

/** Alt+↑/↓ moves between conversations and documents; Escape closes the narrow-screen menu. */
function bindKeyboard() {
  document.addEventListener('keydown', (event) => {
    if (event.altKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
      const links = [...document.querySelectorAll('#sidebar a.nav-item')];
      if (!links.length) return;
      const current = links.findIndex((link) => link.getAttribute('aria-current') === 'page');
      const step = event.key === 'ArrowUp' ? -1 : 1;
      const next = links[(current + step + links.length) % links.length];
      event.preventDefault();
      location.hash = next.getAttribute('href');
    } else if (event.key === 'Escape' && document.body.classList.contains('nav-open')) {
      document.body.classList.remove('nav-open');
      $('nav-toggle').setAttribute('aria-expanded', 'false');
      $('nav-toggle').focus();
    }
  });
}

// ---------------------------------------------------------------------------------------
// Dialogs

function bindDialogs(chat, docs, me) {
  for (const opener of document.querySelectorAll('[data-open]')) {
    opener.addEventListener('click', () => {
      const dialog = $(opener.dataset.open);
      dialog.querySelector('form').reset();
      dialog.querySelector('.error').textContent = '';
      dialog.showModal();
    });
  }
  for (const closer of document.querySelectorAll('dialog [data-close]')) {
    closer.addEventListener('click', () => closer.closest('dialog').close());
  }

  $('room-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = $('room-name').value.trim();
    const action = event.submitter?.value ?? 'join';
    try {
      if (action === 'create') {
        await chat.createRoom(name, $('room-private').checked ? 'private' : 'public', $('room-topic-input').value.trim());
      } else {
        await chat.joinRoom(name);
      }
      $('room-dialog').close();
      location.hash = `#room/${name}`;
    } catch (error) {
      const hints = {
        // A private room one was not invited to answers as if there were none.
        room_not_found: `There is no room “${name}” you can join (a private room needs an invite from a member). Create it?`,
        room_exists: `“${name}” already exists. Join it instead?`,
      };
      $('room-error').textContent = hints[error.code] ?? error.message;
    }
  });

  $('invite-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const user = $('invite-user').value.trim();
    try {
      await chat.invite(user);
      $('invite-dialog').close();
      notify(`${user} is invited.`);
    } catch (error) {
      $('invite-error').textContent = error.message;
    }
  });

  $('dm-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const user = $('dm-user').value.trim();
    if (user === me) {
      $('dm-error').textContent = 'Pick someone other than yourself.';
      return;
    }
    $('dm-dialog').close();
    chat.openDirect(user);
    location.hash = `#room/${chat.activeId}`;
  });

  $('doc-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('doc-name').value.trim();
    $('doc-dialog').close();
    location.hash = `#doc/${name}`;
  });
}

// ---------------------------------------------------------------------------------------

const remembered = localStorage.getItem(USER_KEY);
if (remembered) {
  devToken(remembered).then(start, (error) => showLogin(error.message));
} else {
  showLogin();
}
