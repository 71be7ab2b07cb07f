// SPDX-License-Identifier: MIT
// What the relay's pages share: the topic in the address, /stats polling,
// number formats, the "package missing" notice and a rolling uPlot chart.
'use strict';

const Pages = {
  // /watch/TOPIC, /messages/TOPIC -> TOPIC
  topic() {
    const parts = location.pathname.split('/');
    return decodeURIComponent(parts[parts.length - 1] || '');
  },

  wsURL(path) {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  },

  // Tells, on the page itself, which front-end package the relay could not serve.
  missing(el, pkg, what) {
    const box = document.createElement('div');
    box.className = 'missing';
    box.id = 'missing-' + pkg.replace(/[^a-z0-9]/gi, '');
    box.textContent = `${what} needs the npm package ${pkg}, which the relay does not have ` +
      `in its --www directory: run scripts/quickstart.sh (or npm ci in examples/relay/www), ` +
      `then reload.`;
    el.appendChild(box);
  },

  async stats() {
    const r = await fetch('/stats', { cache: 'no-store' });
    if (!r.ok) throw new Error('/stats: HTTP ' + r.status);
    return r.json();
  },

  // Calls fn(stats, previous, seconds between them) every second.
  pollStats(fn, onError) {
    let prev = null;
    const tick = async () => {
      try {
        const s = await Pages.stats();
        s._t = performance.now() / 1000;
        fn(s, prev, prev ? s._t - prev._t : 0);
        prev = s;
      } catch (e) {
        if (onError) onError(e);
      }
      setTimeout(tick, 1000);
    };
    tick();
  },

  rate(cur, old, dt) {
    return old === undefined || old === null || dt <= 0 || cur < old ? null : (cur - old) / dt;
  },

  fmtNum(v, digits = 1) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(digits) + ' G';
    if (a >= 1e6) return (v / 1e6).toFixed(digits) + ' M';
    if (a >= 1e4) return (v / 1e3).toFixed(digits) + ' k';
    return (Math.round(v * 10) / 10).toString();
  },

  fmtBytes(v) {
    if (v === null || v === undefined) return '–';
    const n = Pages.fmtNum(v);
    return /[kMG]$/.test(n) ? n + 'B' : n + ' B';
  },

  fmtBits(bytesPerS) {
    if (bytesPerS === null || bytesPerS === undefined) return '–';
    const n = Pages.fmtNum(bytesPerS * 8, 2);
    return /[kMG]$/.test(n) ? n + 'bit/s' : n + ' bit/s';
  },

  colors: ['#2f7ed8', '#e4572e', '#17a589', '#f1a208', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d'],
};

// A chart of the last 'points' samples of one or more named series.
// Without uPlot it says so in its place and keeps nothing.
class RollingChart {
  constructor(el, title, points = 120) {
    this.el = el;
    this.title = title;
    this.points = points;
    this.xs = [];
    this.series = new Map();  // name -> values aligned with xs
    this.plot = null;
    this.names = '';
    if (!window.uPlot) {
      Pages.missing(el, 'uplot', `The chart "${title}"`);
      this.disabled = true;
      return;
    }
    window.addEventListener('resize', () => this.rebuild());
  }

  // values: { name: number|null }
  push(t, values) {
    if (this.disabled) return;
    this.xs.push(t);
    for (const [name, v] of Object.entries(values)) {
      if (!this.series.has(name)) this.series.set(name, new Array(this.xs.length - 1).fill(null));
    }
    for (const [name, arr] of this.series) arr.push(name in values ? values[name] : null);
    if (this.xs.length > this.points) {
      this.xs.shift();
      for (const arr of this.series.values()) arr.shift();
    }
    for (const [name, arr] of [...this.series]) {
      if (arr.every((v) => v === null)) this.series.delete(name);  // a topic gone for a while
    }
    const names = [...this.series.keys()].join('\n');
    if (names !== this.names || !this.plot) {
      this.names = names;
      this.rebuild();
    } else {
      this.plot.setData(this.data());
    }
  }

  data() {
    return [this.xs, ...this.series.values()];
  }

  rebuild() {
    if (this.disabled) return;
    if (this.plot) this.plot.destroy();
    const names = [...this.series.keys()];
    const opts = {
      title: this.title,
      width: Math.max(280, this.el.clientWidth - 32),
      height: 200,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      series: [{}, ...names.map((n, i) => ({
        label: n, stroke: Pages.colors[i % Pages.colors.length], width: 2, spanGaps: false,
        value: (u, v) => Pages.fmtNum(v),
      }))],
      axes: [{}, { values: (u, vals) => vals.map((v) => Pages.fmtNum(v, 0)), size: 60 }],
      legend: { show: true },
    };
    this.plot = new uPlot(opts, this.data(), this.el);
  }
}
