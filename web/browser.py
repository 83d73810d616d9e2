"""Shared by tests/test_browser.py and web/bench.py: serve the built site on 127.0.0.1, drive
the system Chromium through Playwright with every other request blocked, run a stage on its
page, and mask the timing columns of a stage's output."""
import functools
import http.server
import os
import re
import shutil
import threading
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
TIMING = re.compile(r"\| [\d.]+ ms/step \| ETA \d+ s$", re.M)


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript",
                      ".js": "text/javascript"}

    def log_message(self, *args):
        pass


def serve(directory):
    """Serve `directory` on 127.0.0.1 in a thread; returns (server, base URL)."""
    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def launch(playwright):
    """Headless Chromium (Debian's, never a downloaded one)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])


def offline_context(browser, blocked):
    """A browser context that lets through only requests to 127.0.0.1; the others are aborted
    and their URLs appended to `blocked`."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})

    def route(request_route):
        url = request_route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    return context


def wait_ready(page, timeout_s=60):
    """Wait until the page's Python is ready; seconds from navigation, as the page measured."""
    page.wait_for_function("document.body.dataset.python === 'ready'", timeout=timeout_s * 1000)
    return float(page.evaluate("document.body.dataset.readySeconds"))


def run_stage(page, settings, timeout_s=120):
    """Fill the settings form, press Run, wait for the end; (output text, status line)."""
    section = page.locator(".runner")
    for name, value in settings.items():
        section.locator(f"input[name={name}]").fill(str(value))
    jobs = int(page.evaluate("document.body.dataset.jobs || 0"))   # jobs finished so far
    section.locator("button.run").click()
    page.wait_for_function(f"Number(document.body.dataset.jobs || 0) > {jobs}",
                           timeout=timeout_s * 1000)
    return section.locator(".output").text_content(), section.locator(".status").text_content()


def mask(text):
    """Output with the timing columns (ms/step, ETA) replaced by a fixed text."""
    return TIMING.sub("| <ms/step> | ETA <s>", text)
