// Credentials for /mqtt when the page is opened from another machine (docs/http.md): the service's web token
// (Web:Token) is the MQTT password. Asked once per browser tab, forgotten when the broker refuses it.
window.edgeCounterToken = cfg => {
  if (!cfg.credentialsRequired) return null;
  let token = sessionStorage.getItem('edgecounter-token');
  if (!token) {
    token = window.prompt('This microscope asks for its web token (Web:Token) before it shows counts or takes commands:') || '';
    sessionStorage.setItem('edgecounter-token', token);
  }
  return token;
};
window.edgeCounterMqtt = (cfg, clientId) => {
  const url = cfg.mqttUrl || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`;
  const options = { clientId, reconnectPeriod: 2000 };
  const token = edgeCounterToken(cfg);
  if (token !== null) Object.assign(options, { username: 'dashboard', password: token });
  const client = mqtt.connect(url, options);
  client.on('error', e => {
    // Refused (MQTT 3.1.1 return codes 4 and 5): stop retrying with a token that cannot work; a reload asks again.
    if (e && (e.code === 4 || e.code === 5)) {
      sessionStorage.removeItem('edgecounter-token');
      client.end(true);
      const box = document.getElementById('error');
      if (box) box.textContent = 'The web token was refused: reload the page to enter it again.';
    }
  });
  return client;
};
