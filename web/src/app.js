// The course pages: the Run and Stop buttons, the settings form and the notebook's cells, wired
// to one Python (worker.mjs) per page. The page's state is in document.body.dataset.python
// (loading, ready, busy, failed) for the learner's eye and the tests.
import { marked } from "./marked.esm.js";

let worker = null;
let job = null;   // the running job: { sink, resolve }
let restarted = false;   // Python was restarted by Stop: the notebook's state is gone
let ready = null;   // resolves when the current Python is ready
const statusLines = () => document.querySelectorAll(".status, .notebook-status");

function say(text) {
  for (const line of statusLines()) line.textContent = text;
}

function startPython(started = performance.now()) {
  document.body.dataset.python = "loading";
  let nowReady;
  ready = new Promise((resolve) => { nowReady = resolve; });
  worker = new Worker("worker.mjs", { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.type === "ready") {
      document.body.dataset.python = "ready";
      // from the page's navigation (the first) or from a restart after Stop
      document.body.dataset.readySeconds = ((performance.now() - started) / 1000).toFixed(2);
      say(restarted ? "Python ready again after Stop: run the notebook's cells again from the top"
        : `Python ready (${data.seconds.toFixed(1)} s)`);
      nowReady();
    } else if (data.type === "fatal") {
      document.body.dataset.python = "failed";
      say(`Python could not start: ${data.message}`);
    } else if (data.type === "out" && job) {
      job.sink.append(data.stream === "err" ? span(data.text, "err") : data.text);
    } else if (data.type === "image" && job) {
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${data.png}`;
      job.sink.parentElement.append(img);
    } else if (data.type === "done" && job) {
      const current = job;
      job = null;
      document.body.dataset.python = "ready";
      document.body.dataset.jobs = Number(document.body.dataset.jobs || 0) + 1;
      current.resolve(data.status);
    }
  };
  worker.onerror = (event) => say(`Python failed: ${event.message}`);
}

function span(text, className) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function run(message, sink) {   // a job for the worker; resolves to its exit status
  return new Promise((resolve) => {
    job = { sink, resolve };
    document.body.dataset.python = "busy";
    worker.postMessage(message);
  });
}

async function whenReady() {   // a click while Python loads waits for it, and says so
  if (document.body.dataset.python === "loading") say("waiting for Python to load...");
  await ready;
}

function stop() {
  if (!job) return;
  worker.terminate();
  const stopped = job;
  job = null;
  stopped.sink.append(span("\n[stopped here: Python was ended and restarts]\n", "err"));
  restarted = true;
  say("stopped: Python was ended; it restarts now (notebook cells must be run again)");
  startPython();
  stopped.resolve("stopped");
}

function setupRunner(section) {
  const script = section.dataset.script;
  const output = section.querySelector(".output");
  const command = section.querySelector(".command");
  const argv = () => [...section.querySelectorAll("input")]
    .filter((input) => input.value !== input.dataset.default && input.value !== "")
    .map((input) => `--${input.name}=${input.value}`);
  section.querySelector("form").oninput = () => {
    command.textContent = ["$ python", script, ...argv()].join(" ");
  };
  section.querySelector(".run").onclick = async () => {
    if (job) return;
    await whenReady();
    if (job) return;
    output.textContent = "";
    section.querySelectorAll("img").forEach((img) => img.remove());
    const started = performance.now();
    say("running...");
    const status = await run({ kind: "script", path: script, argv: argv() }, output);
    if (status !== "stopped") {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      say(`finished in ${seconds} s, exit status ${status}`);
    }
  };
  section.querySelector(".stop").onclick = stop;
}

function renderMarkdown(text) {   // TeX stays as written: marked must not read _ and * in it
  const math = [];
  const kept = text.replace(/\$\$[\s\S]+?\$\$|\$[^$\n]+\$/g, (tex) => `@@${math.push(tex) - 1}@@`);
  const escape = (tex) => tex.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const html = marked.parse(kept);
  return html.replace(/@@(\d+)@@/g, (_, k) => `<span class="math">${escape(math[k])}</span>`);
}

function setupNotebook(section) {
  const cells = JSON.parse(section.querySelector(".cells-data").textContent);
  const container = section.querySelector(".cells");
  const runners = [];
  for (const cell of cells) {
    const div = document.createElement("div");
    div.className = `cell ${cell.type}`;
    if (cell.type === "markdown") {
      div.innerHTML = renderMarkdown(cell.source);
    } else {
      const code = document.createElement("textarea");
      code.value = cell.source;
      code.rows = cell.source.trimEnd().split("\n").length + 1;
      code.spellcheck = false;
      const button = document.createElement("button");
      button.textContent = "Run cell";
      const output = document.createElement("pre");
      output.className = "output committed";
      const runCell = async () => {
        await whenReady();
        div.querySelectorAll("img").forEach((img) => img.remove());
        output.textContent = "";
        output.className = "output";
        button.textContent = "running...";
        const status = await run({ kind: "cell", code: code.value }, output);
        button.textContent = "Run cell";
        return status;
      };
      button.onclick = () => job || runCell();
      div.append(code, button, output);
      for (const out of cell.outputs) {
        if (out.text) output.append(out.text);
        else div.append(Object.assign(new Image(), { src: `data:image/png;base64,${out.png}` }));
      }
      runners.push(runCell);
    }
    container.append(div);
  }
  section.querySelector(".stop-notebook").onclick = stop;
  section.querySelector(".run-all").onclick = async () => {
    if (job) return;
    restarted = false;
    for (const [k, runCell] of runners.entries()) {
      say(`running cell ${k + 1} of ${runners.length}...`);
      const status = await runCell();
      if (status === "stopped") return;
    }
    say(`ran all ${runners.length} code cells`);
  };
}

startPython(0);
document.querySelectorAll(".runner").forEach(setupRunner);
document.querySelectorAll(".notebook").forEach(setupNotebook);
