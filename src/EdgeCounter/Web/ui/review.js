// The review gallery (docs/http.md): the open session's counted cells as crops, grouped by label, unidentified and
// low-confidence first; reclassify, reject and finalize are the commands of docs/mqtt.md, sent over MQTT.
(async () => {
  const cfg = await (await fetch('/config.json')).json();
  const P = cfg.topicPrefix;
  const $ = id => document.getElementById(id);
  $('device').textContent = cfg.deviceId;
  const token = edgeCounterToken(cfg);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const client = edgeCounterMqtt(cfg, 'review-' + Math.random().toString(16).slice(2, 10));
  let labels = [];

  const crop = async url => {
    // Fetched with the token (an <img src> cannot send it), shown from a blob.
    const r = await fetch(url, { headers });
    return r.ok ? URL.createObjectURL(await r.blob()) : null;
  };
  const tile = c => {
    const figure = document.createElement('figure');
    figure.className = `cell ${c.status}`; figure.dataset.cellId = c.cellId; figure.dataset.label = c.label;
    const img = document.createElement('img'); img.alt = `cell ${c.cellId}`; img.width = 96; img.height = 96;
    if (c.crop) crop(c.crop).then(src => { if (src) img.src = src; });
    const caption = document.createElement('figcaption');
    caption.textContent = `#${c.cellId} · ${(c.score * 100).toFixed(0)} %` + (c.detectedLabel !== c.label ? ` (was ${c.detectedLabel})` : '');
    const select = document.createElement('select'); select.className = 'relabel'; select.title = 'count this cell as';
    for (const l of labels) {
      const o = document.createElement('option'); o.value = l; o.textContent = l; o.selected = l === c.label; select.append(o);
    }
    select.disabled = c.status === 'rejected';
    select.addEventListener('change', () => send({ action: 'reclassify', cellId: c.cellId, to: select.value, ...reviewer() }));
    const reject = document.createElement('button'); reject.type = 'button'; reject.className = 'reject';
    reject.textContent = c.status === 'rejected' ? 'rejected' : 'reject'; reject.disabled = c.status === 'rejected';
    reject.addEventListener('click', () => send({ action: 'reject', cellId: c.cellId, ...reviewer() }));
    figure.append(img, caption, select, reject);
    return figure;
  };
  const order = (a, b) => (a === 'unidentified' ? -1 : b === 'unidentified' ? 1 : labels.indexOf(a) - labels.indexOf(b));
  let shown = '';
  const load = async () => {
    const r = await fetch('/cells.json', { headers });
    if (!r.ok) { $('error').textContent = `cells: HTTP ${r.status}`; return; }
    const session = await r.json();
    labels = session.labels;
    $('session-id').textContent = session.sessionId;
    $('state').textContent = session.state;
    $('cell-count').textContent = session.cells.filter(c => c.status === 'counted').length;
    // Redrawn only when something changed, so a crop being looked at does not flicker.
    const key = JSON.stringify(session.cells.map(c => [c.cellId, c.label, c.status])) + session.state;
    if (key === shown) return;
    shown = key;
    const groups = {};
    for (const c of session.cells) (groups[c.label] ||= []).push(c);
    $('gallery').replaceChildren(...Object.keys(groups).sort(order).map(label => {
      const section = document.createElement('section'); section.className = 'group'; section.dataset.label = label;
      const h = document.createElement('h2'); h.textContent = `${label} (${groups[label].filter(c => c.status === 'counted').length})`;
      const cells = groups[label].sort((a, b) => a.score - b.score || a.cellId - b.cellId).map(tile);
      section.append(h, ...cells);
      return section;
    }));
  };
  const reviewer = () => ($('reviewer').value.trim() ? { reviewer: $('reviewer').value.trim() } : {});
  const send = command => { $('error').textContent = ''; client.publish(`${P}/session/set`, JSON.stringify(command), { qos: 1 }); };

  let pending = null;
  const reload = () => { clearTimeout(pending); pending = setTimeout(load, 300); };
  client.on('connect', () => client.subscribe(['available', 'counts', 'session/state', 'session/error', 'session/correction'].map(t => `${P}/${t}`)));
  client.on('offline', () => { $('available').textContent = 'broker unreachable'; $('available').className = 'badge offline'; });
  client.on('message', (topic, payload) => {
    const t = topic.slice(P.length + 1);
    const text = new TextDecoder().decode(payload);
    if (t === 'available') { $('available').textContent = text; $('available').className = `badge ${text}`; return; }
    if (t === 'session/error') { $('error').textContent = JSON.parse(text).error; return; }
    if (t === 'session/state') $('sample-id').textContent = JSON.parse(text).sampleId || '–';
    reload();
  });
  $('finalize-form').addEventListener('submit', e => { e.preventDefault(); send({ action: 'finalize', reviewer: $('reviewer').value.trim() }); });
  fetch('/counts.json', { headers }).then(r => (r.ok ? r.json() : null)).then(s => { if (s) $('sample-id').textContent = s.sampleId || '–'; }).catch(() => {});
  load();
})();
