// SPDX-License-Identifier: MIT
// /watch/TOPIC: the topic's MPEG-TS, carried over /ws/TOPIC, played by
// mpegts.js through Media Source Extensions.
'use strict';

const topic = Pages.topic();
const video = document.getElementById('video');
const statusEl = document.getElementById('status');
const $ = (id) => document.getElementById(id);
// What the browser test reads.
window.watch = { topic, errors: [], mediaInfo: null, player: null };

document.title = `${topic} · watch · writevv-relay`;
$('topic').textContent = topic;
$('to-messages').href = '/messages/' + encodeURIComponent(topic);

function setStatus(text, bad) {
  statusEl.textContent = text;
  statusEl.className = bad ? 'status bad' : 'status';
}

function start() {
  if (!window.mpegts) {
    Pages.missing($('notices'), 'mpegts.js', 'Playing the stream');
    setStatus('no player: mpegts.js is missing', true);
    return;
  }
  if (!mpegts.getFeatureList().mseLivePlayback) {
    setStatus('this browser has no Media Source Extensions for live playback', true);
    return;
  }
  // Its informational logging is for debugging it; warnings and errors stay.
  mpegts.LoggingControl.enableVerbose = false;
  mpegts.LoggingControl.enableDebug = false;
  mpegts.LoggingControl.enableInfo = false;
  const player = mpegts.createPlayer(
    { type: 'mpegts', isLive: true, url: Pages.wsURL('/ws/' + encodeURIComponent(topic)) },
    { enableWorker: false, enableStashBuffer: false, liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 3, liveBufferLatencyMinRemain: 0.5 });
  window.watch.player = player;
  player.on(mpegts.Events.ERROR, (type, detail, info) => {
    const e = { type, detail, info: info && (info.msg || JSON.stringify(info)) };
    window.watch.errors.push(e);
    console.error('mpegts.js:', type, detail, e.info);
    setStatus(`player error: ${type} ${detail} ${e.info || ''}; retrying in 3 s`, true);
    player.destroy();
    setTimeout(start, 3000);
  });
  player.on(mpegts.Events.MEDIA_INFO, (mi) => {
    window.watch.mediaInfo = mi;
    $('media').textContent = mi.width && mi.height
      ? `${mi.width}×${mi.height} ${mi.videoCodec || ''} ${mi.audioCodec || ''}` : '–';
  });
  player.on(mpegts.Events.STATISTICS_INFO, (s) => {
    $('speed').textContent = s.speed ? Pages.fmtBits(s.speed * 1024) : '–';
  });
  player.attachMediaElement(video);
  player.load();
  setStatus('connecting to /ws/' + topic);
  const p = player.play();
  if (p && p.catch) p.catch((e) => setStatus('autoplay refused: ' + e.message + ' (press play)', true));
}

video.addEventListener('playing', () => setStatus('playing live'));
video.addEventListener('waiting', () => setStatus('waiting for data'));
video.addEventListener('error', () => {
  const e = video.error;
  setStatus(`media error ${e ? e.code + ' ' + e.message : ''}`, true);
});

setInterval(() => {
  $('played').textContent = video.currentTime.toFixed(1) + ' s';
  if (video.getVideoPlaybackQuality) {
    const q = video.getVideoPlaybackQuality();
    $('frames').textContent = q.totalVideoFrames;
    $('dropped').textContent = q.droppedVideoFrames;
  }
}, 500);

Pages.pollStats((s, prev, dt) => {
  const t = s.topics && s.topics[topic];
  $('engine').textContent = s.engine;
  if (!t) {
    $('viewers').textContent = '0';
    $('bitrate').textContent = 'no such topic yet';
    return;
  }
  $('viewers').textContent = t.websocket + t.stream + t.sse;
  const old = prev && prev.topics && prev.topics[topic];
  const r = old ? Pages.rate(t.bytes_in, old.bytes_in, dt) : null;
  $('bitrate').textContent = r === null ? '–' : Pages.fmtBits(r);
}, (e) => setStatus('relay unreachable: ' + e.message, true));

start();
