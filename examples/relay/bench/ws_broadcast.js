// Node 'ws' broadcast server for examples/relay/wsbench.sh: the usual
//   for (const c of wss.clients) c.send(data)
// A client's message on /ws/TOPIC is published to every client of TOPIC
// (itself included), as writevv-relay --client-publish does, so the same
// load client (writevv-relay-loadgen ws) drives both.
// usage: node ws_broadcast.js [HOST] [PORT]   (prints "listening on HOST:PORT")
'use strict';
const WebSocket = require('ws');

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 0);
const wss = new WebSocket.Server({ host, port, perMessageDeflate: false, clientTracking: true,
  maxPayload: 1 << 20 });
const topics = new Map(); // topic -> Set of clients

wss.on('connection', (ws, req) => {
  const m = /^\/ws\/([A-Za-z0-9._-]{1,128})$/.exec(req.url);
  if (!m) { ws.close(1008, 'path'); return; }
  const topic = m[1];
  if (!topics.has(topic)) topics.set(topic, new Set());
  const subs = topics.get(topic);
  subs.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const c of subs) c.send(data, { binary: isBinary });
  });
  ws.on('close', () => subs.delete(ws));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const a = wss.address();
  console.log(`listening on ${a.address}:${a.port}`);
});
