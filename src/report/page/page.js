// The report's one script: inflates the data block, draws the timeline on
// a canvas (bars merged per pixel, so a million records stay quick), shows
// a tooltip for the bar under the pointer and lists the records that are
// not ok, a page at a time. It makes no request of any kind.
'use strict';
(function () {
  const report = window.jobfileReport = { ready: false, timelineMs: null };
  const meta = JSON.parse(document.getElementById('meta').textContent);
  const NAMES = meta.statuses;
  const css = getComputedStyle(document.documentElement);
  const COLOR = NAMES.map((s) => css.getPropertyValue('--' + s).trim() || '#888');
  const PALE_OK = css.getPropertyValue('--ok-pale').trim() || '#b5dcbf';
  const LABEL_W = 120, AXIS_H = 22, PAGE = 50;

  function fromBase64(s) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function inflate(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function columns(raw) {
    // A column is [offset, length, planes]: bytes when planes is 0, else
    // `length` numbers whose k-th bytes follow one another, plane by plane.
    const get = (name) => {
      const [off, n, planes] = meta.cols[name];
      if (planes === 0) return raw.subarray(off, off + n);
      const out = new Uint32Array(n);
      for (let k = 0; k < planes; k++) {
        const at = off + k * n, shift = 8 * k;
        for (let i = 0; i < n; i++) out[i] |= raw[at + i] << shift;
      }
      return out;
    };
    const c = {};
    for (const name of Object.keys(meta.cols)) c[name] = get(name);
    // Starts are steps within a lane, indexes steps from the row before.
    const start = new Float64Array(meta.timed);
    for (const lane of meta.lanes) {
      let t = 0;
      for (let i = lane.first; i < lane.first + lane.count; i++) start[i] = t += c.start[i];
    }
    c.start = start;
    let prev = 0;
    for (let i = 0; i < c.index.length; i++) {
      const z = c.index[i];
      c.index[i] = prev = (prev + ((z >>> 1) ^ -(z & 1))) >>> 0;
    }
    const argsAt = new Float64Array(meta.n + 1);
    for (let i = 0; i < meta.n; i++) argsAt[i + 1] = argsAt[i] + c.args_len[i];
    c.argsAt = argsAt;
    c.text = JSON.parse(new TextDecoder().decode(c.text));
    return c;
  }

  const decoder = new TextDecoder();
  function record(c, i) {
    const table = (list, k) => k === 0 ? null : k === 0xffffffff ? '(left out of this page)' : list[k - 1];
    return {
      task: c.text.tasks[c.task[i]] ?? '?',
      index: c.index[i] === 0 ? null : c.index[i] - 1,
      status: NAMES[c.status[i]],
      args: decoder.decode(c.raw.subarray(c.args_off + c.argsAt[i], c.args_off + c.argsAt[i + 1])),
      error: table(c.text.errors, c.error[i]),
      tail: table(c.text.tails, c.tail[i]),
      worker: c.worker[i] || null,
      attempts: c.attempts[i],
    };
  }

  function human(ms) {
    if (ms === 0) return '0';
    if (ms < 1000) return ms.toFixed(ms < 10 ? 2 : 1) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    const s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(s / 3600) + ' h ' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + ' min';
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const child of children) e.append(child);
    return e;
  }

  function timeline(c) {
    const canvas = document.getElementById('timeline');
    const tip = document.getElementById('tooltip');
    const wrap = document.getElementById('timeline-wrap');
    const lanes = meta.lanes, unit = meta.unit_ms;
    const total = Math.max(1, Math.ceil(meta.wall_ms / unit));
    const laneMax = lanes.map((l) => {
      let m = 0;
      for (let i = l.first; i < l.first + l.count; i++) if (c.dur[i] > m) m = c.dur[i];
      return m;
    });
    const laneH = Math.max(3, Math.min(22, Math.floor(440 / Math.max(1, lanes.length))));
    const view = { v0: 0, v1: total };
    let width = 0, scale = 1, queued = false;

    function firstVisible(li, t) {
      // The first row of lane li whose bar may reach past t.
      const l = lanes[li];
      let lo = l.first, hi = l.first + l.count;
      const from = t - laneMax[li];
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (c.start[mid] < from) lo = mid + 1; else hi = mid;
      }
      return lo;
    }

    function draw() {
      queued = false;
      width = Math.max(300, wrap.clientWidth);
      const height = AXIS_H + lanes.length * laneH + 4;
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.height = height + 'px';
      const g = canvas.getContext('2d');
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.fillStyle = '#fff';
      g.fillRect(0, 0, width, height);
      const plot = width - LABEL_W - 8;
      const cover = new Float32Array(Math.max(1, plot));
      scale = plot / Math.max(1e-9, view.v1 - view.v0);
      axis(g, plot, height);
      g.save();
      g.beginPath();
      g.rect(LABEL_W, AXIS_H, plot, height - AXIS_H);
      g.clip();
      lanes.forEach((l, li) => {
        const y = AXIS_H + li * laneH;
        if (li % 2) { g.fillStyle = '#f6f8fa'; g.fillRect(LABEL_W, y, plot, laneH); }
        const from = firstVisible(li, view.v0), end = l.first + l.count;
        // Ok bars first, the others over them, so one failure among a
        // million successes still shows.
        for (let pass = 0; pass < 2; pass++) {
          let run = -1, rx0 = 0, rx1 = 0;
          const flush = () => {
            if (run < 0) return;
            g.fillStyle = COLOR[run];
            g.fillRect(rx0, y + 1, rx1 - rx0, Math.max(1, laneH - 2));
          };
          // Ok bars narrower than a pixel add up in their pixel: one that
          // is less than half busy is drawn pale, so a worker mostly idle
          // between quick records does not look busy.
          if (pass === 0) cover.fill(0);
          for (let i = from; i < end; i++) {
            const s = c.start[i];
            if (s > view.v1) break;
            const st = c.status[i];
            if ((st === 0) !== (pass === 0)) continue;
            const w = c.dur[i] * scale;
            if (pass === 0 && w < 1) {
              const px = Math.floor((s - view.v0) * scale);
              if (px >= 0 && px < plot) cover[px] += Math.max(w, 1e-6);
              continue;
            }
            const x0 = Math.floor(LABEL_W + (s - view.v0) * scale);
            let x1 = Math.max(x0 + 1, Math.ceil(LABEL_W + (s + c.dur[i] - view.v0) * scale));
            // A bar wide enough to be told apart ends a pixel early, so the
            // next one on the lane shows as a bar of its own.
            if (x1 - x0 > 3) x1 -= 1;
            if (st === run && x0 <= rx1) { if (x1 > rx1) rx1 = x1; } else { flush(); run = st; rx0 = x0; rx1 = x1; }
          }
          if (pass === 0) {
            for (let px = 0; px < plot; px++) {
              if (cover[px] === 0) continue;
              g.fillStyle = cover[px] >= 0.5 ? COLOR[0] : PALE_OK;
              g.fillRect(LABEL_W + px, y + 1, 1, Math.max(1, laneH - 2));
            }
          }
          flush();
        }
      });
      g.restore();
      g.fillStyle = '#1f2328';
      g.font = '11px system-ui, sans-serif';
      g.textBaseline = 'middle';
      if (laneH >= 9) {
        lanes.forEach((l, li) => {
          g.fillText(l.label.length > 18 ? l.label.slice(0, 17) + '…' : l.label, 4, AXIS_H + li * laneH + laneH / 2);
        });
      } else {
        g.fillText(lanes.length + ' lanes', 4, AXIS_H + 8);
      }
    }

    function axis(g, plot, height) {
      const spanMs = (view.v1 - view.v0) * unit;
      const want = spanMs / Math.max(1, plot / 110);
      const p = Math.pow(10, Math.floor(Math.log10(Math.max(want, 1e-3))));
      const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= want) || 10 * p;
      g.strokeStyle = '#e3e7eb';
      g.fillStyle = '#6a737d';
      g.font = '11px system-ui, sans-serif';
      g.textBaseline = 'middle';
      for (let t = Math.ceil(view.v0 * unit / step) * step; t <= view.v1 * unit; t += step) {
        const x = Math.round(LABEL_W + (t / unit - view.v0) * scale) + 0.5;
        g.beginPath(); g.moveTo(x, AXIS_H - 4); g.lineTo(x, height); g.stroke();
        if (x + 60 < width) g.fillText(human(t), x + 3, AXIS_H / 2);
      }
    }

    function redraw() { if (!queued) { queued = true; requestAnimationFrame(draw); } }

    function hit(x, y) {
      const li = Math.floor((y - AXIS_H) / laneH);
      if (li < 0 || li >= lanes.length || x < LABEL_W) return -1;
      const l = lanes[li], t = view.v0 + (x - LABEL_W) / scale, tol = 3 / scale;
      let lo = l.first, hi = l.first + l.count;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (c.start[mid] <= t + tol) lo = mid + 1; else hi = mid;
      }
      // The nearest bar within a few pixels; a record that is not ok wins,
      // as it is drawn over the ok ones.
      let best = -1, bestRank = Infinity;
      for (let i = lo - 1, steps = 0; i >= l.first && steps < 50000; i--, steps++) {
        const s = c.start[i], e = s + c.dur[i];
        if (s + laneMax[li] < t - tol) break;
        const gap = t < s ? s - t : t > e ? t - e : 0;
        const rank = gap + (c.status[i] === 0 ? 2 * tol : 0);
        if (gap <= tol && rank < bestRank) { best = i; bestRank = rank; }
      }
      return best;
    }

    function show(i, x, y) {
      if (i < 0) { tip.hidden = true; return; }
      const r = record(c, i);
      const line = (k, v) => el('div', {}, el('span', { className: 'k', textContent: k + ' ' }), v);
      tip.replaceChildren(
        el('div', {}, el('b', { textContent: r.task + (r.index === null ? '' : ' [' + r.index + ']') }), ' ',
          el('span', { className: 'status s-' + r.status, textContent: r.status })),
        line('args', el('code', { textContent: r.args || '[]' })),
        line('took', human(c.dur[i] * unit) + ' from +' + human(c.start[i] * unit)),
        line('worker', (r.worker ?? '?') + ' · attempts ' + r.attempts + ' · lane ' + (lanes.findIndex((l) => i < l.first + l.count) + 1)));
      if (r.error !== null) tip.append(line('error', r.error));
      tip.hidden = false;
      const left = Math.min(x + 14, wrap.clientWidth - tip.offsetWidth - 4);
      tip.style.left = Math.max(0, left) + 'px';
      tip.style.top = (y + 16) + 'px';
    }

    const point = (ev) => { const b = canvas.getBoundingClientRect(); return [ev.clientX - b.left, ev.clientY - b.top]; };
    let drag = null;
    canvas.addEventListener('mousemove', (ev) => {
      const [x, y] = point(ev);
      if (drag) {
        const dv = (drag.x - x) / scale;
        view.v0 = drag.v0 + dv; view.v1 = drag.v1 + dv;
        redraw();
        return;
      }
      show(hit(x, y), x, y);
    });
    canvas.addEventListener('mouseleave', () => { tip.hidden = true; drag = null; });
    canvas.addEventListener('mousedown', (ev) => { drag = { x: point(ev)[0], v0: view.v0, v1: view.v1 }; });
    window.addEventListener('mouseup', () => { drag = null; });
    canvas.addEventListener('dblclick', () => { view.v0 = 0; view.v1 = total; redraw(); });
    canvas.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const [x] = point(ev);
      const at = view.v0 + (x - LABEL_W) / scale;
      const k = Math.exp(Math.sign(ev.deltaY) * 0.2);
      const span = Math.min(total * 1.2, Math.max(10, (view.v1 - view.v0) * k));
      const f = Math.min(1, Math.max(0, (at - view.v0) / (view.v1 - view.v0)));
      view.v0 = at - f * span; view.v1 = view.v0 + span;
      tip.hidden = true;
      redraw();
    }, { passive: false });
    window.addEventListener('resize', redraw);
    draw();
    // Where a bar is on the screen (for tests that point at one).
    report.barAt = (status) => {
      const want = NAMES.indexOf(status);
      for (let li = 0; li < lanes.length; li++) {
        const l = lanes[li];
        for (let i = l.first; i < l.first + l.count; i++) {
          if (want >= 0 && c.status[i] !== want) continue;
          canvas.scrollIntoView({ block: 'center' });
          const b = canvas.getBoundingClientRect();
          const x0 = LABEL_W + (c.start[i] - view.v0) * scale;
          const w = Math.max(1, c.dur[i] * scale);
          return { x: b.left + x0 + Math.min(w / 2, w - 0.5), y: b.top + AXIS_H + li * laneH + laneH / 2, task: record(c, i).task };
        }
      }
      return null;
    };
  }

  function problems(c) {
    const table = document.getElementById('problem-table');
    if (!table) return;
    const body = table.tBodies[0];
    const controls = document.getElementById('problem-controls');
    const select = el('select', { ariaLabel: 'status' }, el('option', { value: '', textContent: 'every status' }));
    const present = new Set();
    for (let k = 0; k < c.bad.length; k++) present.add(c.status[c.bad[k]]);
    for (const s of [...present].sort()) select.append(el('option', { value: String(s), textContent: NAMES[s] }));
    const prev = el('button', { textContent: '← previous' }), next = el('button', { textContent: 'next →' });
    const where = el('span', { className: 'dim' });
    controls.append(select, prev, next, where);
    let list = c.bad, page = 0;
    function render() {
      const pages = Math.max(1, Math.ceil(list.length / PAGE));
      page = Math.min(Math.max(0, page), pages - 1);
      const rows = [];
      for (let k = page * PAGE; k < Math.min(list.length, (page + 1) * PAGE); k++) {
        const r = record(c, list[k]);
        rows.push(el('tr', {},
          el('td', { textContent: r.task }),
          el('td', { textContent: r.index === null ? '' : String(r.index) }),
          el('td', {}, el('span', { className: 'status s-' + r.status, textContent: r.status })),
          el('td', { textContent: r.error ?? '' }),
          el('td', {}, r.tail ? el('pre', { textContent: r.tail }) : '')));
      }
      body.replaceChildren(...rows);
      where.textContent = list.length + ' records · page ' + (page + 1) + ' of ' + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    select.addEventListener('change', () => {
      const want = select.value === '' ? -1 : Number(select.value);
      list = want < 0 ? c.bad : c.bad.filter((i) => c.status[i] === want);
      page = 0;
      render();
    });
    prev.addEventListener('click', () => { page--; render(); });
    next.addEventListener('click', () => { page++; render(); });
    render();
  }

  async function main() {
    performance.mark('jobfile-script');
    const raw = await inflate(fromBase64(document.getElementById('data').textContent.trim()));
    performance.mark('jobfile-inflated');
    const c = columns(raw);
    performance.mark('jobfile-decoded');
    c.raw = raw;
    c.args_off = meta.cols.args[0];
    if (meta.timed > 0 && document.getElementById('timeline')) {
      timeline(c);
      report.timelineMs = performance.now();
      performance.mark('jobfile-timeline-drawn');
    }
    problems(c);
    report.ready = true;
    document.documentElement.dataset.ready = 'true';
  }

  main().catch((e) => {
    document.body.prepend(el('p', { className: 'notice', textContent: 'The report could not be drawn: ' + e }));
    throw e;
  });
})();
