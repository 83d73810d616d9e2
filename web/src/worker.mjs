// The page's Python: a module Web Worker that loads Pyodide, writes the course files into its
// file system (/course) and runs course.py; then it runs one job at a time, a stage script or a
// notebook cell, and streams what Python prints back to the page.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const started = performance.now();
const post = (type, data = {}) => postMessage({ type, ...data });
let matplotlib = null;   // null: not tried yet; then true (the real one) or false (the stand-in)

async function fetchText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

const ready = (async () => {
  const py = await loadPyodide({ indexURL: new URL("./pyodide/", import.meta.url).href });
  const manifest = JSON.parse(await fetchText("course/files.json"));
  const texts = await Promise.all(manifest.files.map((name) => fetchText(`course/${name}`)));
  manifest.files.forEach((name, k) => {
    py.FS.mkdirTree(`/course/${name}`.replace(/\/[^/]*$/, ""));
    py.FS.writeFile(`/course/${name}`, texts[k]);
  });
  py.registerJsModule("page", {
    write: (stream, text) => post("out", { stream, text }),
    image: (png) => post("image", { png }),
  });
  py.runPython(await fetchText("course.py"));
  py.globals.get("setup")();
  post("ready", { seconds: (performance.now() - started) / 1000 });
  return { py, manifest };
})();
ready.catch((error) => post("fatal", { message: String(error) }));

async function loadMatplotlib(py, wheels) {   // once, on the first cell that plots
  if (matplotlib === null) {
    let loaded = false;
    if (wheels) {   // the deployed site has them; a failed download leaves the stand-in
      const errors = [];
      const quiet = { messageCallback: () => {}, errorCallback: (e) => errors.push(e) };
      await py.loadPackage("matplotlib", quiet);
      if (errors.length) console.warn(errors.join("\n"));
      loaded = errors.length === 0;
    }
    matplotlib = py.globals.get("use_matplotlib")(loaded);
  }
}

onmessage = async ({ data }) => {
  let status = 1;
  try {
    const { py, manifest } = await ready;
    if (data.kind === "script") {
      status = py.globals.get("run_script")(data.path, py.toPy(data.argv));
    } else {
      if (/\bmatplotlib\b/.test(data.code)) await loadMatplotlib(py, manifest.matplotlib);
      status = py.globals.get("run_cell")(data.code);
    }
  } catch (error) {   // not Python's error (run_script and run_cell catch those): one line
    post("out", { stream: "err", text: `error in the page's Python worker: ${error.message}\n` });
  }
  post("done", { status });
};
