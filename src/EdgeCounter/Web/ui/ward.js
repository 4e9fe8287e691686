// The ward page: every microscope that publishes under edgecounter/<device>/ on this broker.
(async () => {
  const cfg = await (await fetch('/config.json')).json();
  const client = edgeCounterMqtt(cfg, 'ward-' + Math.random().toString(16).slice(2, 10));
  const tbody = document.querySelector('#ward tbody');
  const devices = new Map();
  const row = id => {
    if (!devices.has(id)) {
      const tr = document.createElement('tr'); tr.dataset.device = id;
      tr.innerHTML = '<td class="device"></td><td class="available"></td><td class="sample"></td><td class="state"></td><td class="white count"></td><td class="progress count"></td>';
      tr.querySelector('.device').textContent = id;
      devices.set(id, tr);
      tbody.append(...[...devices.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, r]) => r));
    }
    return devices.get(id);
  };
  client.on('connect', () => {
    document.getElementById('available').textContent = 'live'; document.getElementById('available').className = 'badge online';
    client.subscribe(['edgecounter/+/available', 'edgecounter/+/counts', 'edgecounter/+/session/state']);
  });
  client.on('message', (topic, payload) => {
    const [, id, ...rest] = topic.split('/');
    const text = new TextDecoder().decode(payload);
    const tr = row(id);
    if (rest.join('/') === 'available') { tr.querySelector('.available').textContent = text; return; }
    const s = JSON.parse(text);
    tr.querySelector('.sample').textContent = s.sampleId || '–';
    tr.querySelector('.state').textContent = s.state;
    tr.querySelector('.white').textContent = `${s.whiteCells} / ${s.target}`;
    tr.querySelector('.progress').textContent = `${Math.round((s.progress || 0) * 100)} %`;
  });
})();
