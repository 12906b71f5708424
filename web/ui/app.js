// tidewatch web UI: plain JavaScript over the public REST API.
// No framework, no build step, no inline code (the page runs under a strict
// CSP). Everything is built with DOM calls and textContent, never innerHTML,
// so nothing the API returns is ever interpreted as markup. Nothing is kept in
// localStorage or sessionStorage.
'use strict';

(() => {
  // API paths are relative so that the page also works behind a path prefix.
  const API = 'api/';
  const HISTORY_LIMIT = 50;
  const FOLLOW_INTERVAL_MS = 1000;
  const FOLLOW_GIVE_UP_MS = 30 * 60 * 1000;

  const state = {
    triggers: [],
    containers: [],
    updates: [],
    // update id → {update, trigger, deliveryId, phase, ok, message, started}
    follows: new Map(),
    // update id → chosen trigger name
    chosen: new Map(),
    // the open snooze panel: {id, choice, custom}
    snooze: null,
    history: { offset: 0, total: 0, container: '', kind: '' },
    errors: new Map(),
    authFailed: false,
  };

  const $ = (id) => document.getElementById(id);

  // ---- HTTP ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new APIError(0, 'network', 'tidewatch cannot be reached (' + e.message + ')');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (res.status === 401) {
      authRequired();
      throw new APIError(401, 'unauthorized', 'sign-in required');
    }
    if (res.ok && state.authFailed) signedIn();
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new APIError(res.status, e.code || String(res.status), e.message || res.statusText || 'HTTP ' + res.status);
    }
    return data;
  }

  // items returns the list in an API answer: a bare array, or the first array
  // found under one of keys (then "items", "data").
  function items(data, ...keys) {
    if (Array.isArray(data)) return data;
    if (data && typeof data === 'object') {
      for (const k of [...keys, 'items', 'data', 'results']) {
        if (Array.isArray(data[k])) return data[k];
      }
    }
    return [];
  }

  // pick returns the first of the (dotted) field paths that holds a plain
  // value, or undefined.
  function pick(obj, ...paths) {
    for (const p of paths) {
      let v = obj;
      for (const part of p.split('.')) {
        if (v === null || v === undefined || typeof v !== 'object') { v = undefined; break; }
        v = v[part];
      }
      if (v !== undefined && v !== null && v !== '' && typeof v !== 'object') return v;
    }
    return undefined;
  }

  function pickList(obj, ...paths) {
    for (const p of paths) {
      const v = obj && obj[p];
      if (Array.isArray(v)) return v;
    }
    return [];
  }

  // ---- DOM helpers --------------------------------------------------------

  // el builds an element: attrs maps attribute names to values (class, data-*,
  // aria-*...); a few are set as properties; children are nodes or strings.
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') n.textContent = v;
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'value') n[k] = v;
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function hidden(text) {
    return el('span', { class: 'visually-hidden', text });
  }

  // keepFocus re-renders while keeping the keyboard focus on the element with
  // the same data-key, so that live refreshes do not throw a keyboard user out.
  function keepFocus(render) {
    const a = document.activeElement;
    const key = a && a.dataset ? a.dataset.key : undefined;
    render();
    if (key) {
      const again = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again && again !== document.activeElement) again.focus();
    }
  }

  function announce(message) {
    const r = $('announce');
    r.textContent = '';
    window.setTimeout(() => { r.textContent = message; }, 50);
  }

  function setError(source, message) {
    if (message) state.errors.set(source, message);
    else state.errors.delete(source);
    renderAlert();
  }

  function renderAlert() {
    const a = $('alert');
    a.replaceChildren();
    if (state.authFailed) {
      a.append(el('p', null, el('strong', { text: 'Sign-in needed. ' }),
        'tidewatch answered 401: it needs a user name and password. Your browser asks for them; if it did not, or you cancelled, try again or reload the page.',
        ' ', el('button', { type: 'button', 'data-key': 'auth-retry', onclick: () => { loadTriggers(); loadUpdates(); } }, 'Try again')));
    }
    for (const [source, message] of state.errors) {
      if (state.authFailed && message.includes('sign-in')) continue;
      a.append(el('p', null, el('strong', { text: source + ': ' }), message));
    }
    a.hidden = a.childElementCount === 0;
  }

  // signedIn resumes after a 401, once a request goes through again (the
  // browser asked for credentials and now sends them).
  function signedIn() {
    state.authFailed = false;
    renderAlert();
    refresh(...Object.keys(loaders));
    if (!events) connectEvents();
  }

  function authRequired() {
    if (!state.authFailed) {
      state.authFailed = true;
      renderAlert();
      if (events) { events.close(); events = null; }
      setLive('offline', 'Signed out');
    }
  }

  // ---- formatting ---------------------------------------------------------

  function parseTime(v) {
    if (!v) return null;
    const d = new Date(v);
    if (isNaN(d.getTime()) || d.getFullYear() < 1971) return null;
    return d;
  }

  function relative(d) {
    const s = Math.round((d.getTime() - Date.now()) / 1000);
    const abs = Math.abs(s);
    const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
    for (const [u, n] of units) {
      if (abs >= n || u === 'second') {
        const q = Math.round(s / n);
        if (u === 'second' && abs < 10) return 'just now';
        try {
          return new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }).format(q, u);
        } catch (_) {
          return d.toLocaleString();
        }
      }
    }
    return d.toLocaleString();
  }

  function timeEl(v, never) {
    const d = parseTime(v);
    if (!d) return el('span', { class: 'muted', text: never || 'never' });
    return el('time', { datetime: d.toISOString(), title: d.toLocaleString(), text: relative(d) });
  }

  // duration formats a Go duration: a string ("1.5s") as it is, a number of
  // nanoseconds (time.Duration in JSON), or milliseconds when ms is true.
  function duration(v, ms) {
    if (v === undefined || v === null || v === '') return '';
    if (typeof v === 'string') return v;
    const millis = ms ? v : v / 1e6;
    if (millis < 1000) return Math.round(millis) + ' ms';
    if (millis < 120000) return (millis / 1000).toFixed(1) + ' s';
    return Math.round(millis / 60000) + ' min';
  }

  function shortDigest(d) {
    if (!d) return '';
    const i = d.indexOf(':');
    return i >= 0 ? d.slice(0, i + 1) + d.slice(i + 1, i + 13) : d.slice(0, 12);
  }

  const KIND_TEXT = {
    major: 'major', minor: 'minor', patch: 'patch', prerelease: 'prerelease', digest: 'digest',
  };
  const KIND_TITLE = {
    major: 'Major version: may break compatibility',
    minor: 'Minor version: new features',
    patch: 'Patch version: fixes',
    prerelease: 'Prerelease: a test version',
    digest: 'Same tag, new image (rebuilt)',
  };

  function kindBadge(kind) {
    if (!kind) return null;
    const k = KIND_TEXT[kind] ? kind : 'other';
    return el('span', { class: 'badge kind-' + k, title: KIND_TITLE[kind] || kind, text: KIND_TEXT[kind] || kind });
  }

  function safeLink(href) {
    if (!href) return null;
    try {
      const u = new URL(href, document.baseURI);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function nameOf(o) {
    return pick(o, 'display_name', 'container', 'name', 'container.name') || '?';
  }

  // change renders "current → candidate" (digests shortened for digest updates).
  function change(u) {
    const cur = pick(u, 'current') || '';
    const cand = pick(u, 'candidate') || '';
    const kind = pick(u, 'kind');
    const from = el('code', { class: 'tag', text: cur || shortDigest(pick(u, 'current_digest')) || '?' });
    let toText = cand;
    if (kind === 'digest' || !cand || cand === cur) {
      toText = (cand || cur) + (pick(u, 'candidate_digest') ? ' @ ' + shortDigest(pick(u, 'candidate_digest')) : ' (new image)');
    }
    return el('span', { class: 'change' }, from, el('span', { 'aria-hidden': 'true', text: ' → ' }), hidden(' to '),
      el('code', { class: 'tag tag-new', text: toText }));
  }

  // ---- triggers -----------------------------------------------------------

  function isManual(t) {
    if (t.auto === false) return true;
    if (t.auto === undefined && t.mode === 'manual') return true;
    return false;
  }

  // applyTriggers lists the triggers Apply can fire for update u: the
  // manual ones (else all), those that deploy first; of those, the swarm
  // triggers first for a Swarm service and last for a container.
  function applyTriggers(u) {
    const manual = state.triggers.filter(isManual);
    const list = (manual.length ? manual : state.triggers).slice();
    const service = u ? isService(containerOf(u)) : false;
    const rank = (t) => (t.deploys ? 2 : 0) + (t.deploys && (t.type === 'swarm') === service ? 1 : 0);
    return list.sort((a, b) => rank(b) - rank(a));
  }

  // containerOf returns the container (or service) row of update u, if listed.
  function containerOf(u) {
    const host = pick(u, 'host');
    const name = pick(u, 'container', 'container_name');
    return state.containers.find((c) => pick(c, 'host') === host && pick(c, 'name') === name);
  }

  function isService(c) {
    return Boolean(c) && pick(c, 'type') === 'service';
  }

  // serviceLines describes a Swarm service's tasks and last update, for its row.
  function serviceLines(c) {
    const s = c.service;
    if (!s || typeof s !== 'object') return [];
    const lines = [];
    const running = Number(s.running) || 0;
    const desired = Number(s.desired) || 0;
    lines.push(running + '/' + desired + ' replica' + (desired === 1 ? '' : 's') + (s.mode && s.mode !== 'replicated' ? ' (' + s.mode + ')' : ''));
    if (Array.isArray(s.nodes) && s.nodes.length) lines.push('on ' + s.nodes.map(String).join(', '));
    if (s.update_state) lines.push('last update: ' + String(s.update_state).replace(/_/g, ' ') + (s.update_message ? ' (' + s.update_message + ')' : ''));
    return lines.map((l) => el('span', { class: 'muted block service-info', text: l }));
  }

  // options returns a trigger's options as [name, value, secret] triples; the
  // API lists them as [{name, value, secret}] (secret values already
  // "[redacted]"), shown as given.
  function options(t) {
    if (Array.isArray(t.options)) {
      return t.options.map((o) => [String(o.name), o.value === undefined || o.value === null ? '' : String(o.value), Boolean(o.secret)]);
    }
    if (t.options && typeof t.options === 'object') {
      return Object.entries(t.options).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v), false]);
    }
    return [];
  }

  async function loadTriggers() {
    try {
      state.triggers = items(await api('GET', 'triggers'), 'triggers');
      setError('Triggers', null);
    } catch (e) {
      setError('Triggers', e.message);
    }
    keepFocus(renderTriggers);
    keepFocus(renderUpdates);
  }

  function renderTriggers() {
    const body = $('triggers-body');
    body.replaceChildren();
    for (const t of state.triggers) {
      const name = pick(t, 'name') || '?';
      const opts = options(t);
      const dl = el('dl', { class: 'options' });
      for (const [k, v, secret] of opts) {
        dl.append(el('dt', { text: k }), el('dd', { class: secret ? 'secret' : null, text: v }));
      }
      const mode = [t.auto === true ? 'auto' : t.auto === false ? 'manual' : '', pick(t, 'mode'), t.deploys ? 'deploys' : '']
        .filter((x, i, a) => x && a.indexOf(x) === i).join(', ');
      const evs = Array.isArray(t.events) ? t.events.join(', ') : (pick(t, 'events') || 'all');
      body.append(el('tr', null,
        el('th', { scope: 'row', 'data-label': 'Name' }, el('span', { class: 'strong', text: name }),
          pick(t, 'type') ? el('span', { class: 'muted block', text: 'type ' + pick(t, 'type') }) : null),
        el('td', { 'data-label': 'Mode', text: mode || '—' }),
        el('td', { 'data-label': 'Threshold', text: pick(t, 'threshold') || 'any' }),
        el('td', { 'data-label': 'Events', text: evs }),
        el('td', { 'data-label': 'Options' }, opts.length ? dl : el('span', { class: 'muted', text: 'none' })),
        el('td', { 'data-label': 'Actions' },
          el('button', { type: 'button', 'data-key': 'test-' + name, 'aria-label': 'Send a test notification with ' + name,
            onclick: (ev) => testTrigger(name, ev.currentTarget) }, 'Send test')),
      ));
    }
    $('triggers-empty').hidden = state.triggers.length > 0;
  }

  async function testTrigger(name, button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const r = await api('POST', 'triggers/' + encodeURIComponent(name) + '/test', {});
      const err = r && (pick(r, 'error', 'error.message', 'last_error'));
      const ok = !err && !(r && (r.ok === false || r.status === 'failed'));
      announce(ok ? 'Test sent with ' + name + '.' : 'Test with ' + name + ' failed: ' + (err || 'no detail'));
    } catch (e) {
      announce('Test with ' + name + ' failed: ' + e.message);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }

  // ---- pending updates ----------------------------------------------------

  async function loadUpdates() {
    try {
      const list = items(await api('GET', 'updates'), 'updates');
      setError('Pending updates', null);
      // Leave the DOM alone when nothing changed, so that a refresh never
      // pulls a button from under the pointer.
      if (JSON.stringify(list) === JSON.stringify(state.updates) && $('updates-list').childElementCount) return;
      state.updates = list;
    } catch (e) {
      setError('Pending updates', e.message);
    }
    keepFocus(renderUpdates);
  }

  function renderUpdates() {
    const list = $('updates-list');
    list.replaceChildren();
    const shown = new Set();
    for (const u of state.updates) {
      shown.add(u.id);
      list.append(updateCard(u, state.follows.get(u.id)));
    }
    // Updates being applied stay listed with their outcome, even once the
    // API no longer counts them as pending.
    for (const [id, f] of state.follows) {
      if (!shown.has(id)) list.append(updateCard(f.update, f));
    }
    $('updates-count').textContent = '(' + state.updates.length + ')';
    $('updates-empty').hidden = list.childElementCount > 0;
    renderApplyAll();
  }

  function updateCard(u, follow) {
    const id = u.id;
    const name = nameOf(u);
    const host = pick(u, 'host') || '';
    const cand = pick(u, 'candidate') || pick(u, 'current') || '';
    const what = name + ' ' + cand;
    const card = el('li', { class: 'card update', 'data-update-id': id, 'aria-labelledby': 'u-' + id + '-h' });
    const head = el('div', { class: 'card-head' },
      el('h3', { id: 'u-' + id + '-h' }, name), kindBadge(pick(u, 'kind')),
      pick(u, 'status') && pick(u, 'status') !== 'pending' ? el('span', { class: 'status status-' + pick(u, 'status'), text: pick(u, 'status') }) : null);
    card.append(head);
    card.append(el('p', { class: 'meta' },
      el('span', null, hidden('Host: '), el('span', { class: 'host', text: host })),
      isService(containerOf(u)) ? el('span', { class: 'badge badge-service', text: 'Swarm service' }) : null,
      pick(u, 'image') ? el('span', { class: 'image', text: pick(u, 'image') }) : null));
    card.append(el('p', { class: 'versions' }, hidden('Running '), change(u)));
    const wait = parseTime(pick(u, 'wait_until'));
    if (wait && wait.getTime() > Date.now()) {
      // The container's cooldown (tidewatch.update.min-age): no trigger acts on it by itself before then.
      card.append(el('p', { class: 'waiting', 'data-waiting': id }, 'Waiting until ',
        el('time', { datetime: wait.toISOString(), title: relative(wait), text: wait.toLocaleString() }),
        ' (cooldown', pick(u, 'candidate_created') ? [': image built ', timeEl(pick(u, 'candidate_created'))] : null, ')'));
    }
    const link = safeLink(pick(u, 'link') || '');
    if (link) {
      card.append(el('p', { class: 'notes' }, el('a', { href: link, target: '_blank', rel: 'noopener noreferrer' },
        'Release notes', hidden(' for ' + what), el('span', { 'aria-hidden': 'true', text: ' ↗' }))));
    }
    if (follow) {
      card.append(el('p', { class: 'outcome outcome-' + follow.phase + (follow.ok === false ? ' bad' : follow.ok ? ' good' : ''), 'data-outcome': follow.phase },
        follow.phase === 'done' ? null : el('span', { class: 'spinner', 'aria-hidden': 'true' }), follow.message));
      if (follow.phase === 'done') {
        card.append(el('div', { class: 'actions' },
          el('button', { type: 'button', 'data-key': 'clear-' + id, 'aria-label': 'Hide the outcome for ' + what,
            onclick: () => { state.follows.delete(id); keepFocus(renderUpdates); $('updates-h').focus(); } }, 'Hide')));
      }
      if (follow.phase !== 'done' || state.updates.every((x) => x.id !== id)) return card;
    }
    card.append(actions(u, what));
    if (state.snooze && state.snooze.id === id) card.append(snoozePanel(u, what));
    return card;
  }

  function actions(u, what) {
    const id = u.id;
    const box = el('div', { class: 'actions' });
    const triggers = applyTriggers(u);
    let chosen = state.chosen.get(id);
    if (!triggers.some((t) => t.name === chosen)) chosen = triggers.length ? triggers[0].name : undefined;
    if (triggers.length > 1) {
      const sel = el('select', { id: 'trigger-' + id, 'data-key': 'trigger-' + id, class: 'trigger-choice',
        onchange: (ev) => state.chosen.set(id, ev.currentTarget.value) });
      for (const t of triggers) sel.append(el('option', { value: t.name, text: t.name }));
      sel.value = chosen;
      box.append(el('label', { for: 'trigger-' + id, class: 'inline-label' }, 'Apply with', hidden(' (for ' + what + ')')), sel);
    }
    box.append(el('button', {
      type: 'button', class: 'primary', 'data-key': 'apply-' + id, 'data-action': 'apply',
      'aria-label': 'Apply ' + what + (chosen && triggers.length === 1 ? ' with ' + chosen : ''),
      title: triggers.length ? 'Fire ' + (triggers.length === 1 ? chosen : 'the chosen trigger') + ' for this update' : 'No trigger is configured',
      disabled: triggers.length === 0,
      onclick: () => {
        const sel = document.getElementById('trigger-' + id);
        apply(u, sel ? sel.value : chosen);
      },
    }, 'Apply'));
    box.append(el('button', { type: 'button', 'data-key': 'dismiss-' + id, 'data-action': 'dismiss',
      'aria-label': 'Dismiss ' + what, onclick: () => dismiss(u, what) }, 'Dismiss'));
    const open = state.snooze && state.snooze.id === id;
    box.append(el('button', { type: 'button', 'data-key': 'snooze-' + id, 'data-action': 'snooze',
      'aria-label': 'Snooze ' + what, 'aria-expanded': open ? 'true' : 'false', 'aria-controls': 'snooze-' + id,
      onclick: () => {
        state.snooze = open ? null : { id, choice: '1d', custom: '' };
        keepFocus(renderUpdates);
        if (!open) { const c = document.getElementById('snooze-choice-' + id); if (c) c.focus(); }
      } }, 'Snooze…'));
    if (triggers.length === 0) box.append(el('span', { class: 'muted', text: 'No trigger to apply with.' }));
    return box;
  }

  function snoozePanel(u, what) {
    const id = u.id;
    const s = state.snooze;
    const form = el('form', { id: 'snooze-' + id, class: 'snooze', 'aria-label': 'Snooze ' + what });
    const choice = el('select', { id: 'snooze-choice-' + id, 'data-key': 'snooze-choice-' + id,
      onchange: (ev) => { s.choice = ev.currentTarget.value; keepFocus(renderUpdates); } },
    el('option', { value: '1d', text: '1 day' }), el('option', { value: '1w', text: '1 week' }),
    el('option', { value: 'custom', text: 'until a date…' }));
    choice.value = s.choice;
    form.append(el('label', { for: 'snooze-choice-' + id }, 'Snooze for'), choice);
    if (s.choice === 'custom') {
      const min = new Date(Date.now() + 60000);
      const input = el('input', { type: 'datetime-local', id: 'snooze-until-' + id, 'data-key': 'snooze-until-' + id, required: true,
        min: localInput(min), value: s.custom || localInput(new Date(Date.now() + 3 * 86400000)),
        oninput: (ev) => { s.custom = ev.currentTarget.value; } });
      form.append(el('label', { for: 'snooze-until-' + id }, 'Until'), input);
    }
    form.append(
      el('button', { type: 'submit', class: 'primary', 'data-key': 'snooze-ok-' + id, 'aria-label': 'Confirm snooze of ' + what }, 'Snooze'),
      el('button', { type: 'button', 'data-key': 'snooze-cancel-' + id, 'aria-label': 'Cancel snooze of ' + what,
        onclick: () => { state.snooze = null; keepFocus(renderUpdates); const b = document.querySelector('[data-key="snooze-' + id + '"]'); if (b) b.focus(); } }, 'Cancel'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      let until;
      if (s.choice === '1d') until = new Date(Date.now() + 86400000);
      else if (s.choice === '1w') until = new Date(Date.now() + 7 * 86400000);
      else {
        const v = document.getElementById('snooze-until-' + id).value;
        until = v ? new Date(v) : null;
        if (!until || isNaN(until.getTime()) || until.getTime() <= Date.now()) {
          announce('Choose a date in the future to snooze until.');
          return;
        }
      }
      snooze(u, what, until);
    });
    return form;
  }

  // localInput formats d for a datetime-local input (local time, minutes).
  function localInput(d) {
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  async function dismiss(u, what) {
    try {
      await api('POST', 'updates/' + encodeURIComponent(u.id) + '/dismiss', {});
      state.updates = state.updates.filter((x) => x.id !== u.id);
      announce('Dismissed ' + what + '; this version is not offered again.');
      keepFocus(renderUpdates);
      $('updates-h').focus();
      refresh('updates', 'containers', 'history');
    } catch (e) {
      announce('Could not dismiss ' + what + ': ' + e.message);
    }
  }

  async function snooze(u, what, until) {
    try {
      await api('POST', 'updates/' + encodeURIComponent(u.id) + '/snooze', { until: until.toISOString() });
      state.snooze = null;
      state.updates = state.updates.filter((x) => x.id !== u.id);
      announce('Snoozed ' + what + ' until ' + until.toLocaleString() + '.');
      keepFocus(renderUpdates);
      $('updates-h').focus();
      refresh('updates', 'containers', 'history');
    } catch (e) {
      announce('Could not snooze ' + what + ': ' + e.message);
    }
  }

  // ---- apply and follow the delivery ----------------------------------------

  async function apply(u, trigger) {
    const what = nameOf(u) + ' ' + (pick(u, 'candidate') || '');
    if (!trigger) { announce('No trigger to apply ' + what + ' with.'); return; }
    const f = { update: u, trigger, what, phase: 'sending', ok: undefined, message: 'Asking ' + trigger + ' to apply ' + what + '…', started: Date.now() };
    state.follows.set(u.id, f);
    state.chosen.set(u.id, trigger);
    keepFocus(renderUpdates);
    announce('Applying ' + what + ' with ' + trigger + '…');
    try {
      const r = await api('POST', 'updates/' + encodeURIComponent(u.id) + '/apply', { trigger });
      const d = (r && r.delivery) || r || {};
      f.deliveryId = pick(d, 'id', 'delivery_id');
      showDelivery(f, d);
    } catch (e) {
      finish(f, false, 'Could not apply ' + what + ' with ' + trigger + ': ' + e.message);
      return;
    }
    followLoop(f);
  }

  async function followLoop(f) {
    while (f.phase !== 'done' && state.follows.get(f.update.id) === f) {
      if (Date.now() - f.started > FOLLOW_GIVE_UP_MS) {
        finish(f, false, 'Still not finished after 30 minutes; see the history.');
        return;
      }
      await new Promise((r) => { f.wake = r; window.setTimeout(r, FOLLOW_INTERVAL_MS); });
      await checkFollow(f);
    }
  }

  async function checkFollow(f) {
    if (f.phase === 'done' || f.checking) return;
    f.checking = true;
    try {
      const list = items(await api('GET', 'deliveries?update_id=' + encodeURIComponent(f.update.id)), 'deliveries');
      let d = list.find((x) => f.deliveryId !== undefined && x.id === f.deliveryId);
      if (!d) d = list.filter((x) => x.trigger === f.trigger).sort((a, b) => (b.id || 0) - (a.id || 0))[0];
      if (d) showDelivery(f, d);
    } catch (e) {
      if (e.status === 401) finish(f, false, 'Signed out while following the update.');
    } finally {
      f.checking = false;
    }
  }

  // showDelivery updates f from the delivery d as the API reports it.
  function showDelivery(f, d) {
    const status = pick(d, 'status') || 'pending';
    const detail = firstLine(pick(d, 'event_detail', 'detail'));
    const err = pick(d, 'last_error', 'error');
    if (status === 'delivered') {
      const us = pick(d, 'update.status');
      if (us === 'rolled-back') finish(f, false, 'Rolled back: ' + f.trigger + ' could not apply ' + f.what + (detail || err ? ' (' + (detail || err) + ')' : '') + '.');
      else if (us === 'failed') finish(f, false, 'Failed: ' + f.trigger + ' could not apply ' + f.what + (detail || err ? ' (' + (detail || err) + ')' : '') + '.');
      else finish(f, true, 'Applied: ' + f.trigger + ' delivered ' + f.what + (detail ? ' (' + detail + ')' : '') + '.');
      return;
    }
    if (status === 'failed') {
      finish(f, false, 'Failed: ' + f.trigger + ' could not apply ' + f.what + (err ? ': ' + err : '') + '.');
      return;
    }
    const attempts = pick(d, 'attempts') || 0;
    let msg;
    if (status === 'running') msg = f.trigger + ' is applying ' + f.what + '…';
    else if (attempts > 0 && err) msg = 'Attempt ' + attempts + ' failed (' + err + '); ' + f.trigger + ' will try again…';
    else msg = 'Queued for ' + f.trigger + '…';
    if (msg !== f.message || f.phase !== status) {
      f.phase = status === 'running' ? 'running' : 'queued';
      f.message = msg;
      keepFocus(renderUpdates);
    }
  }

  function finish(f, ok, message) {
    f.phase = 'done';
    f.ok = ok;
    f.message = message;
    keepFocus(renderUpdates);
    announce(message);
    refresh('updates', 'containers', 'history');
  }

  function wakeFollows() {
    for (const f of state.follows.values()) if (f.phase !== 'done' && f.wake) f.wake();
  }

  // ---- apply all --------------------------------------------------------------

  // At most this many updates per POST /api/updates/apply (the API's bound).
  const BULK_MAX = 100;
  // The open confirmation of Apply all: {trigger}; null when closed.
  let bulk = null;

  // bulkUpdates are the listed updates Apply all applies: pending or
  // notified, and not being applied from this page already.
  function bulkUpdates() {
    return state.updates.filter((u) => (u.status === 'pending' || u.status === 'notified') &&
      !(state.follows.has(u.id) && state.follows.get(u.id).phase !== 'done'));
  }

  // renderApplyAll draws "Apply all (n)" in the updates list's header and,
  // once pressed, the confirmation that names the count and the trigger.
  function renderApplyAll() {
    const box = $('apply-all');
    box.replaceChildren();
    const ups = bulkUpdates();
    const triggers = applyTriggers();
    if (ups.length === 0 || triggers.length === 0) { bulk = null; return; }
    const n = ups.length;
    const noun = n === 1 ? ' update' : ' updates';
    if (!bulk) {
      box.append(el('button', { type: 'button', 'data-key': 'apply-all', 'data-action': 'apply-all', 'aria-expanded': 'false',
        title: 'Apply every pending update listed, each through its trigger\'s policy',
        onclick: () => {
          bulk = { trigger: triggers[0].name };
          keepFocus(renderApplyAll);
          $('apply-all-yes').focus();
        } }, 'Apply all (' + n + ')'));
      return;
    }
    if (!triggers.some((t) => t.name === bulk.trigger)) bulk.trigger = triggers[0].name;
    const panel = el('div', { id: 'apply-all-confirm', class: 'actions', role: 'group', 'aria-labelledby': 'apply-all-q' },
      el('span', { id: 'apply-all-q', text: 'Apply ' + n + noun + '? Each goes through its trigger\'s policy; the updates of one compose project roll out one at a time.' }));
    if (triggers.length > 1) {
      const sel = el('select', { id: 'apply-all-trigger', 'data-key': 'apply-all-trigger', onchange: (ev) => { bulk.trigger = ev.currentTarget.value; } });
      for (const t of triggers) sel.append(el('option', { value: t.name, text: t.name }));
      sel.value = bulk.trigger;
      panel.append(el('label', { for: 'apply-all-trigger', class: 'inline-label' }, 'With'), sel);
    } else {
      panel.append(el('span', { class: 'inline-label', text: 'with ' + bulk.trigger }));
    }
    panel.append(
      el('button', { type: 'button', id: 'apply-all-yes', class: 'primary', 'data-key': 'apply-all-yes',
        onclick: () => applyAll(bulk.trigger) }, 'Apply ' + n + noun),
      el('button', { type: 'button', 'data-key': 'apply-all-no',
        onclick: () => {
          bulk = null;
          keepFocus(renderApplyAll);
          const b = document.querySelector('[data-key="apply-all"]');
          if (b) b.focus();
        } }, 'Cancel'));
    box.append(panel);
  }

  // applyAll applies every listed update through trigger, by
  // POST /api/updates/apply naming them (BULK_MAX at a time), and follows
  // each delivery on its card as Apply does; a refused update shows why.
  async function applyAll(trigger) {
    const ups = bulkUpdates();
    bulk = null;
    if (ups.length === 0) { keepFocus(renderApplyAll); return; }
    const follows = new Map();
    for (const u of ups) {
      const what = nameOf(u) + ' ' + (pick(u, 'candidate') || '');
      const f = { update: u, trigger, what, phase: 'sending', ok: undefined, message: 'Asking ' + trigger + ' to apply ' + what + '…', started: Date.now() };
      state.follows.set(u.id, f);
      state.chosen.set(u.id, trigger);
      follows.set(u.id, f);
    }
    keepFocus(renderUpdates);
    announce('Applying ' + ups.length + ' updates with ' + trigger + '…');
    const settle = (f, message) => { f.phase = 'done'; f.ok = false; f.message = message; };
    let enqueued = 0;
    for (let i = 0; i < ups.length; i += BULK_MAX) {
      const chunk = ups.slice(i, i + BULK_MAX);
      let r;
      try {
        r = await api('POST', 'updates/apply', { trigger, ids: chunk.map((u) => u.id) });
      } catch (e) {
        for (const u of chunk) settle(follows.get(u.id), 'Could not apply ' + follows.get(u.id).what + ' with ' + trigger + ': ' + e.message);
        continue;
      }
      const answered = new Set();
      for (const res of (r && Array.isArray(r.results)) ? r.results : []) {
        const f = follows.get(res.update_id);
        if (!f) continue;
        answered.add(res.update_id);
        if (res.outcome === 'enqueued') {
          enqueued++;
          f.deliveryId = pick(res.delivery || {}, 'id');
          showDelivery(f, res.delivery || {});
          followLoop(f);
        } else {
          settle(f, 'Not applied: ' + (res.message || res.outcome) + '.');
        }
      }
      for (const u of chunk) if (!answered.has(u.id)) settle(follows.get(u.id), 'Not applied: the server did not answer for ' + follows.get(u.id).what + '.');
    }
    keepFocus(renderUpdates);
    announce('Applying ' + enqueued + ' of ' + ups.length + ' updates with ' + trigger + (enqueued < ups.length ? '; ' + (ups.length - enqueued) + ' not applied.' : '.'));
    refresh('updates', 'containers', 'history');
  }

  // ---- containers -----------------------------------------------------------

  async function loadContainers() {
    try {
      const list = items(await api('GET', 'containers'), 'containers');
      setError('Containers', null);
      if (JSON.stringify(list) === JSON.stringify(state.containers) && $('containers-body').childElementCount) return;
      state.containers = list;
    } catch (e) {
      setError('Containers', e.message);
    }
    keepFocus(renderContainers);
    const names = $('history-container-names');
    names.replaceChildren(...[...new Set(state.containers.map((c) => pick(c, 'name')).filter(Boolean))].sort()
      .map((n) => el('option', { value: n })));
  }

  function renderContainers() {
    const body = $('containers-body');
    body.replaceChildren();
    const onlyUpdates = $('containers-updates-only').checked;
    const onlyErrors = $('containers-errors-only').checked;
    const onlyServices = $('containers-services-only').checked;
    const rows = state.containers.slice().sort((a, b) =>
      (pick(b, 'error') ? 1 : 0) - (pick(a, 'error') ? 1 : 0) || String(nameOf(a)).localeCompare(String(nameOf(b))));
    let n = 0;
    for (const c of rows) {
      const err = pick(c, 'error', 'last_error');
      const kind = pick(c, 'kind');
      const hasUpdate = Boolean(kind && pick(c, 'candidate', 'candidate_digest'));
      if (onlyUpdates && !hasUpdate) continue;
      if (onlyErrors && !err) continue;
      if (onlyServices && !isService(c)) continue;
      n++;
      const name = nameOf(c);
      const host = pick(c, 'host') || '';
      const status = err ? 'error' : pick(c, 'status') || (hasUpdate ? 'pending' : 'up to date');
      const policy = pick(c, 'policy', 'policy_summary') || (c.policy && typeof c.policy === 'object'
        ? Object.entries(c.policy).filter(([, v]) => v !== '' && v !== null && typeof v !== 'object').map(([k, v]) => k + '=' + v).join(', ') : '');
      const tr = el('tr', { class: err ? 'row-error' : '', 'data-container': host + '/' + pick(c, 'name') },
        el('th', { scope: 'row', 'data-label': isService(c) ? 'Service' : 'Container' },
          el('span', { class: 'strong', text: name }),
          isService(c) ? [' ', el('span', { class: 'badge badge-service', text: 'Swarm service' })] : null,
          pick(c, 'image') ? el('span', { class: 'muted block image', text: pick(c, 'image') }) : null,
          policy ? el('span', { class: 'muted block', text: 'policy: ' + policy }) : null),
        el('td', { 'data-label': 'Host', text: host }),
        el('td', { 'data-label': 'State' },
          el('span', { class: 'status status-' + status.replace(/\s+/g, '-'), text: status }),
          pick(c, 'state', 'container.state') ? el('span', { class: 'muted block', text: pick(c, 'state', 'container.state') }) : null,
          ...serviceLines(c),
          parseTime(pick(c, 'snoozed_until')) && parseTime(pick(c, 'snoozed_until')).getTime() > Date.now()
            ? el('span', { class: 'muted block' }, 'snoozed until ', timeEl(pick(c, 'snoozed_until'))) : null),
        el('td', { 'data-label': 'Current' }, el('code', { class: 'tag', text: pick(c, 'current') || shortDigest(pick(c, 'current_digest')) || '—' })),
        el('td', { 'data-label': 'Candidate' }, hasUpdate
          ? [el('code', { class: 'tag tag-new', text: kind === 'digest' ? (pick(c, 'candidate') || '') + ' @ ' + shortDigest(pick(c, 'candidate_digest')) : pick(c, 'candidate') }), ' ', kindBadge(kind)]
          : el('span', { class: 'muted', text: '—' })),
        el('td', { 'data-label': 'Last check' }, timeEl(pick(c, 'last_checked', 'checked_at'))),
        el('td', { 'data-label': err ? 'Error' : 'Note' }, err
          ? el('span', { class: 'error-text' }, el('strong', { text: 'Error: ' }), err)
          : pick(c, 'note') ? el('span', { class: 'muted', text: pick(c, 'note') }) : null),
        el('td', { 'data-label': 'Actions' },
          el('button', { type: 'button', 'data-key': 'check-' + host + '/' + pick(c, 'name'), 'aria-label': 'Check ' + name + ' on ' + host + ' now',
            onclick: (ev) => watchOne(c, ev.currentTarget) }, 'Check now')));
      body.append(tr);
    }
    const errs = state.containers.filter((c) => pick(c, 'error', 'last_error')).length;
    $('containers-count').textContent = '(' + state.containers.length + (errs ? ', ' + errs + ' with an error' : '') + ')';
    $('containers-empty').hidden = n > 0;
    $('containers-empty').textContent = state.containers.length ? 'No container matches the filter.' : 'No container is watched yet.';
  }

  async function watchOne(c, button) {
    const name = nameOf(c);
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      const r = await api('POST', 'containers/' + encodeURIComponent(pick(c, 'host')) + '/' + encodeURIComponent(pick(c, 'name')) + '/watch', {});
      const err = r && pick(r, 'error');
      const cand = r && pick(r, 'candidate');
      announce(err ? 'Checked ' + name + ': error: ' + err
        : cand && pick(r, 'kind') ? 'Checked ' + name + ': ' + cand + ' is available.' : 'Checked ' + name + ': up to date.');
    } catch (e) {
      announce('Could not check ' + name + ': ' + e.message);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      refresh('containers', 'updates', 'history');
    }
  }

  // ---- history --------------------------------------------------------------

  async function loadHistory() {
    const h = state.history;
    const q = new URLSearchParams({ limit: String(HISTORY_LIMIT), offset: String(h.offset) });
    if (h.container) q.set('container', h.container);
    if (h.kind) q.set('kind', h.kind);
    let list = [];
    try {
      const r = await api('GET', 'history?' + q);
      list = items(r, 'events', 'history');
      h.total = r && typeof r.total === 'number' ? r.total : h.offset + list.length;
      setError('History', null);
    } catch (e) {
      setError('History', e.message);
    }
    keepFocus(() => renderHistory(list));
  }

  function renderHistory(list) {
    const h = state.history;
    const body = $('history-body');
    body.replaceChildren();
    for (const e of list) {
      const kind = pick(e, 'kind') || '';
      const bad = /error|fail|rolled-back/.test(kind);
      const from = pick(e, 'from');
      const to = pick(e, 'to');
      body.append(el('tr', { class: bad ? 'row-error' : '' },
        el('td', { 'data-label': 'When' }, timeEl(pick(e, 'at', 'time'))),
        el('td', { 'data-label': 'Event' }, el('span', { class: 'event event-' + kind, text: kind })),
        el('td', { 'data-label': 'Container', text: pick(e, 'container') || '' }),
        el('td', { 'data-label': 'Host', text: pick(e, 'host') || '' }),
        el('td', { 'data-label': 'Change' }, from || to
          ? [el('code', { class: 'tag', text: from || '?' }), el('span', { 'aria-hidden': 'true', text: ' → ' }), hidden(' to '),
            el('code', { class: 'tag', text: to || '?' }), ' ', kindBadge(pick(e, 'update_kind'))]
          : null),
        el('td', { 'data-label': 'Detail', text: [firstLine(pick(e, 'detail')), pick(e, 'principal') ? 'by ' + pick(e, 'principal') : ''].filter(Boolean).join(' — ') })));
    }
    $('history-empty').hidden = list.length > 0;
    const first = list.length ? h.offset + 1 : 0;
    $('history-range').textContent = list.length ? first + '–' + (h.offset + list.length) + ' of ' + h.total : '';
    $('history-prev').disabled = h.offset === 0;
    $('history-next').disabled = h.offset + list.length >= h.total;
  }

  // ---- registries and watchers -----------------------------------------------

  async function loadRegistries() {
    let list = [];
    try {
      list = items(await api('GET', 'registries'), 'registries');
      setError('Registries', null);
    } catch (e) {
      setError('Registries', e.message);
    }
    const body = $('registries-body');
    body.replaceChildren();
    for (const r of list) {
      const err = pick(r, 'last_error', 'error');
      const known = (v) => (typeof v === 'number' && v < 0 ? undefined : v);
      const remaining = known(pick(r, 'ratelimit_remaining', 'rate_limit_remaining', 'rate_limit.remaining'));
      const limit = known(pick(r, 'ratelimit_limit', 'rate_limit_limit', 'rate_limit.limit'));
      const retryAfter = parseTime(pick(r, 'retry_after_until'));
      body.append(el('tr', { class: err ? 'row-error' : '' },
        el('th', { scope: 'row', 'data-label': 'Registry', text: pick(r, 'host', 'registry', 'name') || '?' }),
        el('td', { 'data-label': 'Requests', text: String(pick(r, 'requests') || 0) }),
        el('td', { 'data-label': 'Errors', text: String(pick(r, 'errors') || 0) }),
        el('td', { 'data-label': 'Token requests', text: String(pick(r, 'token_requests', 'tokens') || 0) }),
        el('td', { 'data-label': 'Rate limit left' }, remaining === undefined ? el('span', { class: 'muted', text: 'not reported' }) : remaining + (limit !== undefined ? ' of ' + limit : ''),
          retryAfter && retryAfter.getTime() > Date.now() ? el('span', { class: 'error-text block' }, 'paused until ', timeEl(retryAfter.toISOString())) : null),
        el('td', { 'data-label': 'Last error' }, err ? el('span', { class: 'error-text' }, el('strong', { text: 'Error: ' }), err) : el('span', { class: 'muted', text: 'none' }))));
    }
    $('registries-empty').hidden = list.length > 0;
  }

  async function loadWatchers() {
    let list = [];
    try {
      list = items(await api('GET', 'watchers'), 'watchers');
      setError('Watchers', null);
    } catch (e) {
      setError('Watchers', e.message);
    }
    const body = $('watchers-body');
    body.replaceChildren();
    for (const w of list) {
      const err = pick(w, 'last_run.error', 'error', 'last_error');
      const lr = w.last_run || null;
      const dur = !lr ? '' : lr.duration_ns !== undefined ? duration(lr.duration_ns, false)
        : lr.duration_ms !== undefined ? duration(lr.duration_ms, true) : duration(lr.duration, false);
      const found = lr ? (lr.containers || 0) + ' containers, ' + (lr.updates || 0) + ' updates' + (lr.errors ? ', ' + lr.errors + ' errors' : '') : '—';
      body.append(el('tr', { class: err ? 'row-error' : '' },
        el('th', { scope: 'row', 'data-label': 'Watcher', text: pick(w, 'name') || '?' }),
        el('td', { 'data-label': 'Host', text: pick(w, 'host', 'address', 'host_address') || '' }),
        el('td', { 'data-label': 'Last run' }, w.running ? el('span', { class: 'strong block', text: 'running now' }) : null,
          timeEl(pick(w, 'last_run.start', 'last_run.started_at', 'last_run_at')), dur ? ' (' + dur + ')' : ''),
        el('td', { 'data-label': 'Found', class: lr && lr.errors ? 'error-text' : null, text: found }),
        el('td', { 'data-label': 'Next run' }, timeEl(pick(w, 'next_run', 'next_run_at', 'next'), 'not scheduled'),
          pick(w, 'cron') ? el('span', { class: 'muted block', text: 'schedule ' + pick(w, 'cron') }) : null),
        el('td', { 'data-label': 'Error' }, err ? el('span', { class: 'error-text' }, el('strong', { text: 'Error: ' }), err) : el('span', { class: 'muted', text: 'none' }))));
    }
    $('watchers-empty').hidden = list.length > 0;
  }

  // ---- git sources -----------------------------------------------------------

  function commitText(c) {
    return c ? c.slice(0, 12) : '';
  }

  async function loadGit() {
    let list = [];
    try {
      list = items(await api('GET', 'git'), 'sources');
      setError('Git sources', null);
    } catch (e) {
      setError('Git sources', e.message);
    }
    const body = $('git-body');
    body.replaceChildren();
    for (const g of list) {
      const err = g.last_error || '';
      let stateEl;
      if (g.in_sync) stateEl = el('span', { class: 'strong', text: 'in sync' });
      else if (!g.fetched) stateEl = el('span', { class: 'muted', text: 'not fetched yet' });
      else if (g.failed && g.failed === g.fetched) stateEl = el('span', { class: 'error-text' }, el('strong', { text: 'Failed: ' }), firstLine(g.failed_reason || 'the deploy failed'), ' (not retried until a newer commit)');
      else stateEl = el('span', { class: 'error-text', text: 'drift: the fetched commit is not deployed' });
      body.append(el('tr', { class: err || (g.fetched && !g.in_sync) ? 'row-error' : '' },
        el('th', { scope: 'row', 'data-label': 'Source', text: g.name || '?' }),
        el('td', { 'data-label': 'Repository' }, g.url || '', el('span', { class: 'muted block', text: (g.branch || 'default branch') + ' · ' + (g.path || '.') })),
        el('td', { 'data-label': 'Deployed' }, g.deployed ? el('code', { text: commitText(g.deployed) }) : el('span', { class: 'muted', text: 'nothing yet' })),
        el('td', { 'data-label': 'Fetched' }, g.fetched ? el('code', { text: commitText(g.fetched) }) : el('span', { class: 'muted', text: '—' })),
        el('td', { 'data-label': 'State' }, stateEl),
        el('td', { 'data-label': 'Last sync' }, g.syncing ? el('span', { class: 'strong block', text: 'syncing now' }) : null,
          timeEl(g.last_sync, 'never'), err ? el('span', { class: 'error-text block' }, el('strong', { text: 'Error: ' }), err) : null)));
    }
    $('git-empty').hidden = list.length > 0;
  }

  // ---- refresh scheduling and the event stream ------------------------------

  const loaders = {
    triggers: loadTriggers, updates: loadUpdates, containers: loadContainers, history: loadHistory,
    registries: loadRegistries, watchers: loadWatchers, git: loadGit,
  };
  const pending = new Set();
  let refreshTimer = 0;

  // refresh re-fetches the named lists soon, coalescing bursts of events.
  function refresh(...names) {
    if (state.authFailed) return;
    for (const n of names) pending.add(n);
    if (refreshTimer) return;
    refreshTimer = window.setTimeout(() => {
      refreshTimer = 0;
      const todo = [...pending];
      pending.clear();
      for (const n of todo) loaders[n]();
    }, 150);
  }

  let events = null;
  let retryDelay = 1000;

  function setLive(s, text) {
    const l = $('live');
    l.dataset.state = s;
    l.textContent = text;
  }

  function connectEvents() {
    if (!window.EventSource || state.authFailed) return;
    const es = new EventSource(API + 'events');
    events = es;
    let wasDown = false;
    es.onopen = () => {
      setLive('live', 'Live');
      retryDelay = 1000;
      if (wasDown) refresh(...Object.keys(loaders));
      wasDown = false;
    };
    es.onerror = () => {
      wasDown = true;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error): try again later, and let a
        // plain request find out whether we are signed out.
        setLive('offline', 'Offline, retrying…');
        es.close();
        if (events === es) events = null;
        window.setTimeout(() => { if (!events) { loadUpdates(); connectEvents(); } }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setLive('reconnecting', 'Reconnecting…');
      }
    };
    es.addEventListener('run', () => refresh('containers', 'updates', 'watchers', 'registries', 'history', 'git'));
    es.addEventListener('update', () => refresh('updates', 'containers', 'history'));
    es.addEventListener('delivery', () => { wakeFollows(); refresh('history', 'updates'); });
    es.addEventListener('git', () => refresh('git', 'history'));
  }

  async function watchNow() {
    const b = $('watch-now');
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    try {
      await api('POST', 'watch', {});
      announce('Watching every host now; results appear as they come in.');
    } catch (e) {
      announce('Could not start a watch: ' + e.message);
    } finally {
      b.disabled = false;
      b.removeAttribute('aria-busy');
      b.focus();
    }
  }

  function init() {
    $('watch-now').addEventListener('click', watchNow);
    $('containers-updates-only').addEventListener('change', () => keepFocus(renderContainers));
    $('containers-errors-only').addEventListener('change', () => keepFocus(renderContainers));
    $('containers-services-only').addEventListener('change', () => keepFocus(renderContainers));
    $('history-filter').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.history.container = $('history-container').value.trim();
      state.history.kind = $('history-kind').value;
      state.history.offset = 0;
      loadHistory();
    });
    $('history-prev').addEventListener('click', () => {
      state.history.offset = Math.max(0, state.history.offset - HISTORY_LIMIT);
      loadHistory();
    });
    $('history-next').addEventListener('click', () => {
      state.history.offset += HISTORY_LIMIT;
      loadHistory();
    });
    $('updates-h').setAttribute('tabindex', '-1');
    loadTriggers().then(() => loadUpdates());
    loadContainers();
    loadHistory();
    loadRegistries();
    loadWatchers();
    loadGit();
    connectEvents();
    // Relative times ("3 minutes ago") age; redraw them now and then.
    window.setInterval(() => {
      if (!document.hidden) { keepFocus(renderContainers); }
    }, 60000);
    // Git sources sync on their own schedule: look again now and then.
    window.setInterval(() => {
      if (!document.hidden && !state.authFailed) loadGit();
    }, 30000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();

// firstLine keeps a detail's first line: a trigger may put a summary there
// and machine-readable detail (a rollout's JSON report) after it.
function firstLine(s) {
  return typeof s === 'string' ? s.split('\n')[0] : s;
}
