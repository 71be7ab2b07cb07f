// SPDX-License-Identifier: MIT
// /messages/TOPIC: the topic's text messages from /sse/TOPIC, newest first,
// and a chart of how many arrive each second.
'use strict';

const KEEP = 500;  // messages kept on the page
const topic = Pages.topic();
const $ = (id) => document.getElementById(id);
const list = $('messages');
// What the browser test reads.
window.messages = { topic, received: 0, lastId: null, open: false };

document.title = `${topic} · messages · writevv-relay`;
$('topic').textContent = topic;
$('to-watch').href = '/watch/' + encodeURIComponent(topic);

const chart = new RollingChart($('chart'), 'messages per second', 120);
let thisSecond = 0;

const es = new EventSource('/sse/' + encodeURIComponent(topic));
es.onopen = () => {
  window.messages.open = true;
  $('status').textContent = 'live on /sse/' + topic;
};
es.onerror = () => {
  window.messages.open = false;
  $('status').textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
};
es.onmessage = (ev) => {
  const li = document.createElement('li');
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = `#${ev.lastEventId} ${new Date().toLocaleTimeString()}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = ev.data;  // text as text, never as markup
  li.append(meta, text);
  li.dataset.id = ev.lastEventId;
  list.prepend(li);
  while (list.childElementCount > KEEP) list.lastElementChild.remove();
  window.messages.received++;
  window.messages.lastId = ev.lastEventId;
  thisSecond++;
  $('count').textContent = window.messages.received;
};

setInterval(() => {
  $('rate').textContent = thisSecond;
  chart.push(Date.now() / 1000, { [topic]: thisSecond });
  thisSecond = 0;
}, 1000);

$('publish').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text) return;
  const r = await fetch('/pub/' + encodeURIComponent(topic), {
    method: 'POST', headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: text });
  if (r.ok) $('text').value = '';
  else $('status').textContent = 'publish failed: HTTP ' + r.status;
});
