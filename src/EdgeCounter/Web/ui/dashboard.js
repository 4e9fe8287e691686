// This microscope's page: live over MQTT over WebSockets (docs/http.md), commands as documented in docs/mqtt.md.
(async () => {
  const cfg = await (await fetch('/config.json')).json();
  const P = cfg.topicPrefix;
  const $ = id => document.getElementById(id);
  $('device').textContent = cfg.deviceId;
  const client = edgeCounterMqtt(cfg, 'dashboard-' + Math.random().toString(16).slice(2, 10));
  const images = {};
  const showImage = (id, payload) => {
    if (images[id]) URL.revokeObjectURL(images[id]);
    images[id] = URL.createObjectURL(new Blob([payload], { type: 'image/jpeg' }));
    $(id).src = images[id];
  };
  const rows = (tbody, entries, cls) => {
    tbody.replaceChildren(...entries.map(([k, v]) => {
      const tr = document.createElement('tr'); tr.dataset.label = k;
      const a = document.createElement('td'); a.textContent = k;
      const b = document.createElement('td'); b.textContent = v; b.className = cls;
      tr.append(a, b); return tr;
    }));
  };
  // session/state (retained at the session's start) and counts (after every field) arrive in any order: never let
  // an older picture of the same session replace a newer one.
  let shown = { sessionId: null, fields: -1 };
  const older = s => s.sessionId === shown.sessionId && s.fields < shown.fields;
  const showSession = s => {
    if (older(s)) return;
    shown = { sessionId: s.sessionId, fields: s.fields };
    $('sample-id').textContent = s.sampleId || '–';
    $('state').textContent = s.state;
    $('fields').textContent = s.fields;
    $('white-cells').textContent = s.whiteCells;
    // Marrow mode: the target and the differential are over nucleated cells, the groups are the marrow categories.
    $('cell-kind').textContent = s.marrow ? 'nucleated cells' : 'white cells';
    $('differential-title').textContent = s.marrow ? 'Marrow differential (% of nucleated cells)' : 'White-cell differential';
    $('marrow').hidden = !s.marrow;
    if (s.marrow) {
      const m = s.marrow;
      $('me-ratio').textContent = m.myeloidErythroidRatio == null ? '–' : m.myeloidErythroidRatio.toFixed(2);
      $('plasma-percent').textContent = m.plasmaCellPercent == null
        ? (m.notMeasured.includes('plasma_cell') ? 'not measured' : '–')
        : `${m.plasmaCellPercent.toFixed(1)} % (${m.plasmaCellPercentCi95[0].toFixed(1)}-${m.plasmaCellPercentCi95[1].toFixed(1)})`;
      $('not-measured').textContent = m.notMeasured.length ? m.notMeasured.join(', ') : 'none';
    }
    $('target').textContent = s.target;
    $('progress-bar').style.width = `${Math.round((s.progress || 0) * 100)}%`;
  };
  const showCounts = msg => {
    if (older(msg)) return;
    showSession(msg);
    rows($('totals').tBodies[0], Object.entries(msg.totals), 'count');
    rows($('groups').tBodies[0], Object.entries(msg.groups), 'count');
    const max = Math.max(1, ...Object.values(msg.differential));
    $('differential').replaceChildren(...Object.entries(msg.differential).map(([label, pct]) => {
      const bar = document.createElement('div'); bar.className = 'bar'; bar.dataset.label = label;
      const name = document.createElement('span'); name.textContent = label;
      const fill = document.createElement('span'); fill.className = 'fill'; fill.style.width = `${(pct / max) * 10}em`;
      const value = document.createElement('span'); value.textContent = `${pct.toFixed(1)} %`;
      // The 95 % interval: a differential of a hundred cells is a sample, and this says how wide.
      const ci = (msg.differentialCi95 || {})[label];
      const interval = document.createElement('span'); interval.className = 'ci';
      interval.textContent = ci ? `(${ci[0].toFixed(1)}-${ci[1].toFixed(1)})` : '';
      interval.title = `95 % confidence interval (Wilson) for this share at this many ${msg.marrow ? 'nucleated' : 'white'} cells`;
      bar.append(name, fill, value, interval); return bar;
    }));
  };
  // First paint from HTTP (the same JSON as P/counts), then live over MQTT; a refused or missing snapshot just waits.
  const token = edgeCounterToken(cfg);
  fetch('/counts.json', { headers: token ? { Authorization: `Bearer ${token}` } : {} })
    .then(r => (r.ok ? r.json() : null)).then(s => { if (s) showCounts(s); }).catch(() => {});
  client.on('connect', () => {
    $('error').textContent = '';
    client.subscribe(['available', 'counts', 'session/state', 'session/error', 'field/image', 'slide/image'].map(t => `${P}/${t}`));
  });
  client.on('offline', () => { $('available').textContent = 'broker unreachable'; $('available').className = 'badge offline'; });
  client.on('message', (topic, payload) => {
    const t = topic.slice(P.length + 1);
    if (t === 'field/image') return showImage('field-image', payload);
    if (t === 'slide/image') return showImage('slide-image', payload);
    const text = new TextDecoder().decode(payload);
    if (t === 'available') { $('available').textContent = text; $('available').className = `badge ${text}`; return; }
    const msg = JSON.parse(text);
    if (t === 'session/error') { $('error').textContent = msg.error; return; }
    if (t === 'session/state') { showSession(msg); return; }
    if (t === 'counts') showCounts(msg);
  });
  const send = command => { $('error').textContent = ''; client.publish(`${P}/session/set`, JSON.stringify(command), { qos: 1 }); };
  $('controls').addEventListener('submit', e => {
    e.preventDefault();
    const command = { action: 'start' };
    if ($('sample').value.trim()) command.sampleId = $('sample').value.trim();
    if ($('target-input').value) command.target = Number($('target-input').value);
    send(command);
  });
  $('stop').addEventListener('click', () => send({ action: 'stop' }));
  $('reset').addEventListener('click', () => send({ action: 'reset' }));
})();
