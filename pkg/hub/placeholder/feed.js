// A minimal live feed: one line per entry, the newest on top.
(function () {
  const feed = document.getElementById("feed");
  const state = document.getElementById("state");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + "/v1/subscribe");
  const beat = setInterval(() => ws.readyState === 1 && ws.send('{"v":1,"type":"heartbeat"}'), 15000);
  ws.onopen = () => { state.textContent = "connected"; };
  ws.onclose = () => { state.textContent = "disconnected"; clearInterval(beat); };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    let line;
    if (m.type === "entry") {
      const e = m.data;
      const side = (p) => (p.pod ? p.namespace + "/" + p.pod : p.ip + ":" + p.port);
      line = [e.ts, e.proto, side(e.src), "→", side(e.dst), e.method, e.path, e.status].join(" ");
    } else if (m.type === "dropped") {
      line = "… " + m.data.n + " entries dropped (this page is too slow)";
    } else if (m.type === "error") {
      line = "error: " + m.data.message;
    } else {
      return;
    }
    const div = document.createElement("div");
    div.textContent = line;
    feed.prepend(div);
    while (feed.childElementCount > 500) feed.lastChild.remove();
  };
})();
