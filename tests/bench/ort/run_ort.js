// Runs ONNX models in onnxruntime-node (CPU execution provider), for tests/bench/bench_ort.sh.
//
// Timing (--iters K > 0): every model gets its own session (graphOptimizationLevel 'all',
// intraOpNumThreads N, interOpNumThreads 1, sequential execution), created before any timing;
// then --warmup W untimed runs of each model, then K rounds in which each model runs once, in
// turn (interleaved, as `bertq bench` times its models). The time of one run is the wall time of
// `await session.run(feeds)` (process.hrtime), the input tensors being built once beforehand;
// it includes the binding's small per-call cost and copying out the logits.
//
// Inputs: the first --batch rows of a JSON Lines file keyed by input_ids, attention_mask and
// token_type_ids (tests/bench/make_tokenized.py), so ORT and `bertq bench --inputs` see the same
// token ids.
//
// Logits (--logits FILE): runs every row of --inputs through each model, --batch rows at a time
// (dynamic quantization picks its activation ranges per batch, so batching as `bertq compare`
// does matters), and writes {label: [[l0, l1], ...]} as JSON.
//
// --optimized DIR: also has ORT write each session's optimized graph to DIR/LABEL.optimized.onnx
// (optimizedModelFilePath), to see which fusions (DynamicQuantizeMatMul, MatMulIntegerToFloat,
// ...) it applied; use it outside timing runs.
//
// Usage: node run_ort.js [--threads N] [--batch B] --inputs rows.jsonl [--iters K] [--warmup W]
//          [--json out.json] [--logits out.json] [--optimized DIR] MODEL.onnx[=LABEL] ...
'use strict';
const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const a = { threads: 1, batch: 8, iters: 0, warmup: 2, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--threads') a.threads = parseInt(v(), 10);
    else if (k === '--batch') a.batch = parseInt(v(), 10);
    else if (k === '--iters') a.iters = parseInt(v(), 10);
    else if (k === '--warmup') a.warmup = parseInt(v(), 10);
    else if (k === '--inputs') a.inputs = v();
    else if (k === '--json') a.json = v();
    else if (k === '--logits') a.logits = v();
    else if (k === '--optimized') a.optimized = v();
    else if (k === '--modules') a.modules = v(); // folder holding node_modules/onnxruntime-node
    else if (k.startsWith('--')) throw new Error(`unknown option ${k}`);
    else {
      const eq = k.indexOf('=');
      const file = eq < 0 ? k : k.slice(0, eq);
      a.models.push({ file, label: eq < 0 ? path.basename(file, '.onnx') : k.slice(eq + 1) });
    }
  }
  if (!a.inputs || a.models.length === 0) throw new Error('need --inputs and at least one model');
  return a;
}

function readRows(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

const NAMES = ['input_ids', 'attention_mask', 'token_type_ids'];

function feeds(ort, rows) {
  const seq = rows[0].input_ids.length;
  const f = {};
  for (const n of NAMES) {
    const data = new BigInt64Array(rows.length * seq);
    rows.forEach((r, i) => {
      if (r[n].length !== seq) throw new Error(`row ${i}: ${n} has ${r[n].length} ids, not ${seq}`);
      r[n].forEach((x, j) => { data[i * seq + j] = BigInt(x); });
    });
    f[n] = new ort.Tensor('int64', data, [rows.length, seq]);
  }
  return f;
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = require(a.modules ? path.join(path.resolve(a.modules), 'node_modules', 'onnxruntime-node')
    : 'onnxruntime-node');
  const version = ort.env.versions.node || ort.env.versions.common;
  const rows = readRows(a.inputs);
  const sessions = [];
  for (const m of a.models) {
    const opts = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: a.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    };
    if (a.optimized) {
      fs.mkdirSync(a.optimized, { recursive: true });
      opts.optimizedModelFilePath = path.join(a.optimized, `${m.label}.optimized.onnx`);
    }
    const t0 = process.hrtime.bigint();
    const s = await ort.InferenceSession.create(m.file, opts);
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    sessions.push({ ...m, s, out: s.outputNames[0], loadMs, ms: [] });
  }

  if (a.logits) {
    const res = { ort_version: version, batch: a.batch, rows: rows.length, logits: {} };
    for (const x of sessions) {
      const all = [];
      for (let i = 0; i < rows.length; i += a.batch) {
        const r = await x.s.run(feeds(ort, rows.slice(i, i + a.batch)));
        const t = r[x.out];
        const n = t.dims[t.dims.length - 1];
        for (let j = 0; j < t.dims[0]; j++) all.push(Array.from(t.data.slice(j * n, (j + 1) * n)));
      }
      res.logits[x.label] = all;
    }
    fs.writeFileSync(a.logits, JSON.stringify(res));
  }

  if (a.iters > 0) {
    if (rows.length < a.batch) {
      throw new Error(`${a.inputs} has ${rows.length} rows, fewer than --batch ${a.batch}`);
    }
    const f = feeds(ort, rows.slice(0, a.batch));
    for (let w = 0; w < a.warmup; w++) for (const x of sessions) await x.s.run(f);
    for (let it = 0; it < a.iters; it++) {
      for (const x of sessions) {
        const t0 = process.hrtime.bigint();
        await x.s.run(f);
        x.ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    const res = {
      ort_version: version, threads: a.threads, batch: a.batch, seq: rows[0].input_ids.length,
      iters: a.iters, warmup: a.warmup, inputs_file: a.inputs,
      models: sessions.map((x) => ({
        model: x.file, label: x.label, load_ms: x.loadMs, median_ms: median(x.ms), ms: x.ms,
      })),
    };
    const text = JSON.stringify(res, null, 1);
    if (a.json) fs.writeFileSync(a.json, text);
    else process.stdout.write(text + '\n');
  }
  for (const x of sessions) await x.s.release();
}

main().catch((e) => {
  process.stderr.write(`run_ort: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
