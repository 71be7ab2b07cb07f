// Node 'ws' subscriber for the relay tests: connects to each URL given, and
// writes one JSON line per received message (type, length, sha256) to
// OUT.N.jsonl, until the text message "END" arrives; then closes with 1000.
// usage: node wsrecord.js OUTPREFIX URL...
'use strict';
const WebSocket = require('ws');
const crypto = require('crypto');
const fs = require('fs');

const [prefix, ...urls] = process.argv.slice(2);
let open = urls.length;
let failed = false;
urls.forEach((url, n) => {
  const out = fs.openSync(`${prefix}.${n}.jsonl`, 'w');
  const ws = new WebSocket(url, { maxPayload: 64 << 20 });
  ws.on('open', () => fs.writeSync(out, JSON.stringify({ open: true }) + '\n'));
  ws.on('message', (data, isBinary) => {
    const h = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeSync(out, JSON.stringify({ t: isBinary ? 'b' : 't', n: data.length, h }) + '\n');
    if (!isBinary && data.toString() === 'END')
      ws.close(1000);
  });
  ws.on('close', (code) => {
    fs.writeSync(out, JSON.stringify({ close: code }) + '\n');
    fs.closeSync(out);
    if (--open === 0)
      process.exit(failed ? 1 : 0);
  });
  ws.on('error', (e) => {
    failed = true;
    fs.writeSync(out, JSON.stringify({ error: String(e) }) + '\n');
  });
});
