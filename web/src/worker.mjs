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
    matplotlib = false;
    if (wheels) {
      try {
        await py.loadPackage("matplotlib", { messageCallback: () => {} });
        matplotlib = true;
      } catch (error) {
        console.warn(error);
      }
    }
    py.globals.get("use_matplotlib")(matplotlib);
  }
}

onmessage = async ({ data }) => {
  const { py, manifest } = await ready;
  let status;
  if (data.kind === "script") {
    status = py.globals.get("run_script")(data.path, py.toPy(data.argv));
  } else {
    if (/\bmatplotlib\b/.test(data.code)) await loadMatplotlib(py, manifest.matplotlib);
    status = py.globals.get("run_cell")(data.code);
  }
  post("done", { status });
};
