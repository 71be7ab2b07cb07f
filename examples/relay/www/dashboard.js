// SPDX-License-Identifier: MIT
// /dashboard: every topic of /stats, polled each second, as a table and
// rolling charts (rates are differences of the relay's counters).
'use strict';

const $ = (id) => document.getElementById(id);
// What the browser test reads.
window.dashboard = { polls: 0, last: null };

const charts = {
  msgs: new RollingChart($('c-msgs'), 'messages/s in, per topic'),
  deliv: new RollingChart($('c-deliv'), 'deliveries/s, per topic'),
  bytes: new RollingChart($('c-bytes'), 'bytes/s out, per topic'),
  subs: new RollingChart($('c-subs'), 'subscribers, per topic'),
  cpu: new RollingChart($('c-cpu'), 'sender CPU ns per delivered message'),
  backlog: new RollingChart($('c-backlog'), 'backlog bytes, per topic'),
};

function cell(tr, cls, text, title) {
  let td = tr.querySelector('td.' + cls);
  if (!td) {
    td = document.createElement('td');
    td.className = cls;
    tr.appendChild(td);
  }
  if (td.textContent !== String(text)) td.textContent = text;
  if (title) td.title = title;
  return td;
}

function row(tbody, key) {
  let tr = tbody.querySelector(`tr[data-topic="${CSS.escape(key)}"]`);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.topic = key;
    tbody.appendChild(tr);
  }
  return tr;
}

function render(s, prev, dt) {
  window.dashboard.polls++;
  window.dashboard.last = s;
  const now = Date.now() / 1000;
  $('engine').textContent = s.engine;
  $('mode').textContent = s.mode;
  $('subscribers').textContent = s.subscribers;
  $('deliveries').textContent = prev ? Pages.fmtNum(Pages.rate(s.deliveries, prev.deliveries, dt)) : '–';
  $('cpu').textContent = s.deliveries ? s.sender_cpu_ns_per_message.toFixed(0) + ' ns' : '–';
  $('pcpu').textContent = prev
    ? (100 * Pages.rate(s.process_cpu_ns, prev.process_cpu_ns, dt) / 1e9).toFixed(1) + ' %' : '–';
  $('rss').textContent = Pages.fmtBytes(s.rss_kb * 1024);
  $('uptime').textContent = s.uptime_s.toFixed(0) + ' s';
  $('summary').textContent = `${Object.keys(s.topics).length} topics, ` +
    `${s.publishers} publishers${s.publisher ? ', ingest stream connected' : ''}`;

  const tbody = $('topics').tBodies[0];
  const seen = new Set();
  const per = { msgs: {}, deliv: {}, bytes: {}, subs: {}, cpu: {}, backlog: {} };
  const names = Object.keys(s.topics).sort();
  for (const name of names) {
    const t = s.topics[name];
    const o = prev && prev.topics[name];
    const tr = row(tbody, name);
    seen.add(name);
    if (!tr.querySelector('td.name')) {
      const td = document.createElement('td');
      td.className = 'name';
      const a = document.createElement('a');
      a.textContent = name;
      // A topic with WebSocket viewers of binary data is likely a stream.
      a.href = '/messages/' + encodeURIComponent(name);
      const w = document.createElement('a');
      w.textContent = ' ▶';
      w.title = 'watch';
      w.href = '/watch/' + encodeURIComponent(name);
      td.append(a, w);
      tr.appendChild(td);
    }
    const mps = o ? Pages.rate(t.messages, o.messages, dt) : null;
    const dps = o ? Pages.rate(t.deliveries, o.deliveries, dt) : null;
    const bin = o ? Pages.rate(t.bytes_in, o.bytes_in, dt) : null;
    const bout = o ? Pages.rate(t.bytes_out, o.bytes_out, dt) : null;
    const dd = o ? t.deliveries - o.deliveries : 0;
    const cpu = o && dd > 0 ? (t.sender_cpu_ns - o.sender_cpu_ns) / dd
      : (t.deliveries ? t.sender_cpu_ns / t.deliveries : null);
    cell(tr, 'subscribers', t.subscribers);
    cell(tr, 'websocket', t.websocket);
    cell(tr, 'sse', t.sse);
    cell(tr, 'stream', t.stream);
    cell(tr, 'msgs', Pages.fmtNum(mps));
    cell(tr, 'bin', Pages.fmtBytes(bin));
    cell(tr, 'bout', Pages.fmtBytes(bout));
    cell(tr, 'drops', t.drops);
    cell(tr, 'behind', t.behind);
    cell(tr, 'backlog', Pages.fmtBytes(t.backlog_bytes));
    cell(tr, 'cpu', cpu === null ? '–' : cpu.toFixed(0) + ' ns');
    per.msgs[name] = mps;
    per.deliv[name] = dps;
    per.bytes[name] = bout;
    per.subs[name] = t.subscribers;
    per.cpu[name] = cpu;
    per.backlog[name] = t.backlog_bytes;
  }
  // GET / (the --ingest stream ring) is no topic of /stats, but has its viewers.
  {
    const key = '(GET /)';
    const tr = row(tbody, key);
    seen.add(key);
    cell(tr, 'name', 'GET / stream', 'the --ingest/--stdin stream, served from its ring');
    cell(tr, 'subscribers', s.viewers);
    cell(tr, 'websocket', '–');
    cell(tr, 'sse', '–');
    cell(tr, 'stream', s.viewers);
    cell(tr, 'msgs', '–');
    cell(tr, 'bin', prev ? Pages.fmtBytes(Pages.rate(s.bytes_in, prev.bytes_in, dt)) : '–');
    cell(tr, 'bout', prev ? Pages.fmtBytes(Pages.rate(s.bytes_out, prev.bytes_out, dt)) : '–');
    cell(tr, 'drops', s.drops);
    cell(tr, 'behind', s.viewers_behind);
    cell(tr, 'backlog', '–');
    cell(tr, 'cpu', s.bytes_out ? (s.sender_cpu_ns_per_byte * 1000).toFixed(0) + ' ns/kB' : '–');
    tr.classList.add('ring');
  }
  for (const tr of [...tbody.rows]) if (!seen.has(tr.dataset.topic)) tr.remove();
  $('status').textContent = `updated ${new Date().toLocaleTimeString()} from /stats`;
  if (prev) for (const k of Object.keys(charts)) charts[k].push(now, per[k]);
}

Pages.pollStats(render, (e) => { $('status').textContent = 'relay unreachable: ' + e.message; });
