// DraftMesh playground: streams /v1/completions (stream: true) with fetch and renders each chunk's
// tokens coloured by provenance. No dependencies, no build step.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  let controller = null; // AbortController of the running request

  const PROVENANCES = ['draft_accepted', 'ngram_accepted', 'tree_accepted', 'target',
    'aligned_nudge', 'base', 'small_span', 'large_span'];
  const COLLABORATIVE = ['nudging', 'entropy_switch', 'lead_in'];

  function headers() {
    const h = { 'Content-Type': 'application/json' };
    const key = $('api-key').value.trim();
    if (key) h.Authorization = 'Bearer ' + key;
    return h;
  }

  function setStatus(text, error) {
    $('status').textContent = text;
    $('status').className = error ? 'error' : '';
  }

  // Leaving the key field (its change event) and clicking "load models" both load, often at once: a
  // second load while one runs joins it.
  let loading = null;
  function loadModels() {
    if (!loading) loading = fetchModels().finally(() => { loading = null; });
    return loading;
  }

  async function fetchModels() {
    try {
      const r = await fetch('/v1/models', { headers: headers() });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
      const select = $('model');
      const current = select.value;
      const options = body.data.map((m) => [m.id, m.draftmesh && m.draftmesh.draft
        ? m.id + ' (' + m.draftmesh.target + ' + ' + m.draftmesh.draft + ')' : m.id]);
      const shown = [...select.options].map((o) => [o.value, o.textContent]);
      // An unchanged list keeps its elements (and the user's choice): a reload that replaced them
      // under a reader (a loaded key field's change and a click, a moment apart) lost the choice.
      if (JSON.stringify(options) !== JSON.stringify(shown)) {
        select.textContent = '';
        for (const [value, label] of options) {
          const o = document.createElement('option');
          o.value = value;
          o.textContent = label;
          select.appendChild(o);
        }
        if ([...select.options].some((o) => o.value === current)) select.value = current;
      }
      setStatus('models loaded');
    } catch (e) {
      setStatus('models: ' + e.message, true);
    }
  }

  function number(id) {
    const v = $(id).value.trim();
    return v === '' ? null : Number(v);
  }

  function requestBody() {
    const body = {
      model: $('model').value,
      prompt: $('prompt').value,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: number('max-tokens'),
      temperature: number('temperature'),
      top_p: number('top-p'),
    };
    const topK = number('top-k');
    if (topK) body.top_k = topK;
    const seed = number('seed');
    if (seed !== null) body.seed = seed;
    const dm = { strategy: $('strategy').value };
    if (dm.strategy === 'speculative' || dm.strategy === 'default') {
      const k = number('k');
      if (k) dm.k = k;
      dm.adaptive = $('adaptive').checked;
      dm.drafter = $('drafter').value;
      if (dm.drafter !== 'chain') {
        delete dm.k;
        delete dm.adaptive;
        const nodes = number('tree-nodes');
        if (nodes) dm.tree_nodes = nodes;
      }
    }
    if (dm.strategy === 'nudging') {
      // The base (target) reads the prompt as plain text; the aligned model its zoo template.
      const gamma = number('gamma');
      dm.draft = $('aligned').value.trim();
      dm.nudging = { aligned_prompt: '<|endoftext|><|user|>' + $('prompt').value + '<|assistant|>' };
      if (gamma !== null) dm.nudging.gamma = gamma;
    }
    if (dm.strategy === 'entropy_switch') {
      const tau = number('tau');
      if (tau !== null) dm.entropy_switch = { tau: tau };
    }
    const budget = number('kv-budget');
    if (dm.strategy === 'specpc' && budget) dm.spec_pc = { budget_tokens: budget };
    const kvMethod = $('kv-method').value;
    if (dm.strategy === 'speckv') {
      dm.kv_compression = budget ? { budget: budget } : {};
    } else if (kvMethod) {
      dm.kv_compression = { method: kvMethod };
      if (budget) dm.kv_compression.budget = budget;
    }
    if ($('ignore-eos').checked) dm.ignore_eos = true;
    body.draftmesh = dm;
    return body;
  }

  // ---- rendering

  const state = { tokens: 0, started: 0, rounds: [], entropy: [], provenance: [], paths: [] };

  function reset() {
    $('output').textContent = '';
    for (const id of ['acceptance', 'mean-accepted', 'rate', 'rounds', 'target-calls', 'current-k',
      'strategy-run', 'models-run', 'fallback', 'large-share', 'pw-cost', 'switches',
      'prompt-compression', 'kv-compression', 'drafter-run', 'per-pass', 'paths'])
      $(id).textContent = '–';
    $('tokens').textContent = '0';
    state.tokens = 0;
    state.started = performance.now();
    state.rounds = [];
    state.paths = [];
    state.entropy = [];
    state.provenance = [];
    state.stats = null;
    drawChart();
  }

  function span(text, provenance, ids) {
    const s = document.createElement('span');
    s.className = 'tok prov-' + provenance;
    s.dataset.provenance = provenance;
    s.textContent = text;
    if (ids) s.title = 'token ids ' + ids.join(' ');
    return s;
  }

  // One router chunk: text (which may lag its tokens), token ids, provenance per token.
  function renderChunk(text, dm) {
    const out = $('output');
    const prov = dm.provenance || [];
    const ids = dm.token_ids || [];
    const perToken = dm.token_text; // per-token text, once the router sends it
    if (Array.isArray(perToken) && perToken.length === ids.length && ids.length > 0) {
      perToken.forEach((t, i) => out.appendChild(span(t, prov[i] || 'unspecified', [ids[i]])));
    } else if (text.length > 0 || ids.length > 0) {
      const kinds = [...new Set(prov)];
      if (kinds.length <= 1) {
        out.appendChild(span(text, kinds[0] || 'unspecified', ids));
      } else {
        // A verify round: its accepted drafts come first, the target's own token last. Without
        // per-token text the split is drawn in proportion to the token counts.
        const s = span(text, 'mixed', ids);
        s.dataset.provenance = prov.join(',');
        const stops = [];
        let at = 0;
        for (const k of PROVENANCES) {
          const n = prov.filter((p) => p === k).length;
          if (n === 0) continue;
          const from = (100 * at) / prov.length;
          at += n;
          const to = (100 * at) / prov.length;
          const c = getComputedStyle(document.documentElement).getPropertyValue(
            '--' + k.split('_')[0] + '-bg');
          stops.push(c.trim() + ' ' + from + '% ' + to + '%');
        }
        s.style.background = 'linear-gradient(90deg, ' + stops.join(', ') + ')';
        out.appendChild(s);
      }
    }
    state.tokens += ids.length;
    state.provenance.push(...prov);
    if (ids.length > 0) state.rounds.push(prov);
    if (Array.isArray(dm.entropy_bits)) state.entropy.push(...dm.entropy_bits);
    const st = dm.stats || {};
    if (st.drafted > 0) {
      $('acceptance').textContent = (100 * st.acceptance_rate).toFixed(1) + ' % (' + st.accepted + '/' + st.drafted + ')';
    } else {
      $('acceptance').textContent = 'n/a (nothing drafted)';
    }
    $('mean-accepted').textContent = st.rounds > 0 ? Number(st.mean_accepted_length).toFixed(2) : 'n/a';
    $('rounds').textContent = st.rounds !== undefined ? st.rounds : '–';
    $('target-calls').textContent = st.target_calls !== undefined ? st.target_calls : '–';
    $('current-k').textContent = st.current_k || '–';
    $('strategy-run').textContent = st.strategy || '–';
    if (st.drafter && st.drafter !== 'chain') {
      // The stats carry the latest round's accepted path (node indices in its tree, root first).
      $('drafter-run').textContent = st.drafter + ' (' + st.tree_nodes + ' nodes)';
      $('per-pass').textContent = Number(st.tokens_per_target_pass || 0).toFixed(2);
      const last = state.paths[state.paths.length - 1];
      if (st.rounds > 0 && (!last || last.round !== st.rounds)) {
        state.paths.push({ round: st.rounds, path: st.accepted_path || [] });
      }
      $('paths').textContent = state.paths.slice(-12).map((p) =>
        '#' + p.round + ': ' + (p.path.length ? p.path.join('→') : 'none')).join('  ');
    }
    $('models-run').textContent = (st.target_model || '?') + (st.draft_model ? ' + ' + st.draft_model : '');
    $('fallback').textContent = st.fallback ? 'yes (the draft was dropped; the target went on alone)' : 'no';
    state.stats = st;
    const pc = st.prompt_compression || {};
    if (pc.method) {
      $('prompt-compression').textContent = pc.method + ': ' + pc.kept_tokens + ' of ' +
        pc.prompt_tokens + ' prompt tokens kept (' + pc.dropped_tokens + ' dropped)' +
        (pc.uncompressed ? ', uncompressed: ' + st.fallback_reason : '');
    }
    const kv = st.kv_compression || {};
    if (kv.method) {
      const kib = (b) => (Number(b) / 1024).toFixed(0) + ' KiB';
      $('kv-compression').textContent = kv.method + ': ' + kv.kept_slots + ' of ' +
        kv.prompt_tokens + ' slots per KV head kept (' + kib(kv.kv_bytes_kept) + ' kept, ' +
        kib(kv.kv_bytes_dropped) + ' dropped' +
        (kv.draft_answer_tokens > 0 ? ', draft answer ' + kv.draft_answer_tokens + ' tokens' : '') +
        ')' + (kv.uncompressed ? ', uncompressed: ' + st.fallback_reason : '');
    }
    if (COLLABORATIVE.includes(st.strategy)) {
      $('large-share').textContent = (100 * st.large_share).toFixed(1) + ' % (' + st.large_tokens +
        ' large, ' + st.small_tokens + ' small)';
      $('pw-cost').textContent = Number(st.parameter_weighted_cost).toFixed(3);
      $('switches').textContent = st.switches + ' / ' + st.nudging_rounds;
    }
    $('tokens').textContent = String(state.tokens);
    const secs = (performance.now() - state.started) / 1000;
    $('rate').textContent = secs > 0 ? (state.tokens / secs).toFixed(1) : '–';
    drawChart();
  }

  function colour(p) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(
      '--' + (p || 'target').split('_')[0]);
    return v.trim() || '#888';
  }

  // Per-token entropy when the router sends it (GenerateChunk.entropy_bits); until then, the tokens each
  // verify round emitted (its accepted length), coloured by provenance.
  function drawChart() {
    const c = $('entropy-chart');
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    const pad = 24;
    const w = c.width - 2 * pad;
    const h = c.height - 2 * pad;
    g.strokeStyle = '#d5dbe1';
    g.strokeRect(pad, pad, w, h);
    if (state.entropy.length > 0) {
      const collab = COLLABORATIVE.includes((state.stats || {}).strategy);
      $('chart-caption').textContent = collab
        ? 'per-token entropy of the writing model (bits)' : 'per-token entropy of the target (bits)';
      const max = Math.max(1, ...state.entropy);
      const step = w / Math.max(1, state.entropy.length);
      state.entropy.forEach((e, i) => {
        g.fillStyle = colour(state.provenance[i]);
        const bh = (h * e) / max;
        g.fillRect(pad + i * step, pad + h - bh, Math.max(1, step - 1), bh);
      });
      const st = state.stats || {};
      if (st.strategy === 'entropy_switch' && st.window > 0) {
        // EAD's signal: the rolling mean of the writers' entropies, against the τ line.
        $('chart-caption').textContent = 'per-token entropy of the writing model (bits), rolling mean over ' +
          st.window + ' tokens (line) and τ = ' + st.tau + ' (dashed)';
        g.strokeStyle = '#1d232a';
        g.beginPath();
        let sum = 0;
        state.entropy.forEach((e, i) => {
          sum += e;
          if (i >= st.window) sum -= state.entropy[i - st.window];
          const mean = sum / Math.min(i + 1, st.window);
          const y = pad + h - (h * mean) / max;
          if (i === 0) g.moveTo(pad + step / 2, y); else g.lineTo(pad + i * step + step / 2, y);
        });
        g.stroke();
        g.setLineDash([4, 4]);
        g.strokeStyle = '#b00020';
        const ty = pad + h - (h * Math.min(st.tau, max)) / max;
        g.beginPath();
        g.moveTo(pad, ty);
        g.lineTo(pad + w, ty);
        g.stroke();
        g.setLineDash([]);
      }
      return;
    }
    $('chart-caption').textContent =
      'tokens per round, coloured by provenance (per-token entropy: not sent by this router)';
    const rounds = state.rounds;
    if (rounds.length === 0) return;
    const max = Math.max(1, ...rounds.map((r) => r.length));
    const step = w / rounds.length;
    rounds.forEach((r, i) => {
      let y = pad + h;
      for (const p of r) {
        const bh = h / max;
        g.fillStyle = colour(p);
        g.fillRect(pad + i * step, y - bh, Math.max(1, step - 1), bh - 1);
        y -= bh;
      }
    });
  }

  // ---- streaming

  async function generate(ev) {
    ev.preventDefault();
    if (controller) return;
    reset();
    controller = new AbortController();
    $('generate').disabled = true;
    $('stop').disabled = false;
    setStatus('generating…');
    try {
      const r = await fetch('/v1/completions', {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify(requestBody()),
        signal: controller.signal,
      });
      if (!r.ok) {
        let message = r.status + ' ' + r.statusText;
        try {
          const body = await r.json();
          if (body.error) message = r.status + ': ' + body.error.message;
        } catch (ignored) { /* not JSON */ }
        throw new Error(message);
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let finish = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data: ')) continue; // comments are keep-alives
            const data = line.slice(6);
            if (data === '[DONE]') continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message);
            if (chunk.choices && chunk.choices.length > 0) {
              const choice = chunk.choices[0];
              renderChunk(choice.text || '', chunk.draftmesh || {});
              if (choice.finish_reason) finish = choice.finish_reason;
            }
            if (chunk.usage) {
              $('tokens').textContent = chunk.usage.completion_tokens + ' (prompt ' + chunk.usage.prompt_tokens + ')';
            }
          }
        }
      }
      setStatus('done: ' + (finish || 'stream ended'));
    } catch (e) {
      if (e.name === 'AbortError') setStatus('stopped');
      else setStatus(e.message, true);
    } finally {
      controller = null;
      $('generate').disabled = false;
      $('stop').disabled = true;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('controls').addEventListener('submit', generate);
    $('stop').addEventListener('click', () => controller && controller.abort());
    $('load-models').addEventListener('click', loadModels);
    $('api-key').addEventListener('change', loadModels);
    drawChart();
  });
})();
