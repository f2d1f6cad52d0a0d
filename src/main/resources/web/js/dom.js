// Small DOM helpers. User text only ever becomes text nodes, never markup.

/** Creates an element: `h('li', { class: 'x', onclick: f }, 'text', child)`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') el.style.cssText = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

/** A stable hue for a user id, so a person keeps one colour everywhere. */
export function hue(user) {
  let hash = 0;
  for (let i = 0; i < user.length; i += 1) hash = (hash * 31 + user.charCodeAt(i)) | 0;
  return Math.abs(hash) % 360;
}

export function timeOf(ts) {
  const date = ts ? new Date(ts) : new Date();
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** The time alone for today, with the date for an older moment ("last seen"). */
export function dayTimeOf(ts) {
  const date = new Date(ts);
  if (date.toDateString() === new Date().toDateString()) return timeOf(ts);
  return date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** A short random id for clientMsgId / clientOpId (printable, well under 64 characters). */
export function newId(prefix) {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return prefix + '-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Joins names for humans: "bob", "bob and carol", "bob, carol and dan". */
export function names(list) {
  if (list.length <= 1) return list.join('');
  return list.slice(0, -1).join(', ') + ' and ' + list[list.length - 1];
}

export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
