"""Rendered HTML in a real headless browser: Debian's Chromium driven by selenium through chromedriver.

``site_problems`` opens every page of a built site and lists what a reader would find broken: a page
without content, a script error, a missing script or stylesheet, an image that does not show or a
figure file under 1 kB, a link to a missing file or to an #anchor that is not on its page; and a
figure (an image in the page's article) without a caption, without alt text (or with a file name for
one), not linked to its full-size image, or whose smallest text shows under 9 pt (12 CSS pixels) at
the browser's width of 1280 pixels. That size is the figure's smallest text in pixels, which
``ncutils.show`` writes into the PNG, times the scale at which the page shows it.
tests/test_book.py runs it on the smoke build of the book; the tests here run it on tiny hand-made
sites with one defect each, so that the book's test is known to fail when the book is broken.
"""
from __future__ import annotations

import base64
import contextlib
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from ncutils.show import READABLE_PX, TEXT_PX_KEY

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
INSTALL = ("install Debian's Chromium and its driver: `apt-get install chromium chromium-driver` (as root; "
           "`make browser` does it), or set CHROMIUM and CHROMEDRIVER to a Chromium and its matching chromedriver")
SKIPPED_DIRS = {"_static", "_sources", "_images", "_downloads"}  # assets, not pages
MIN_FIGURE_BYTES = 1000

# Run in the page once it has loaded: load every image (also lazy ones), let MathJax typeset (when the page
# has it), then describe the page.
DESCRIBE_PAGE = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
images.forEach(i => { i.loading = "eager"; });
const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
const main = document.querySelector("main") || document.body;
Promise.all([typeset.catch(() => null), ...images.map(i => i.decode().catch(() => null))]).then(() => done({
  maths: document.querySelectorAll(".math").length,
  rendered: document.querySelectorAll("mjx-container").length,
  raw: ["\\\\(", "\\\\["].some(t => main.innerText.includes(t)),
  title: document.title,
  text: (document.querySelector("main") || document.body).innerText.trim().length,
  ids: [...document.querySelectorAll("[id]")].map(e => e.id)
       .concat([...document.querySelectorAll("a[name]")].map(a => a.name)),
  links: [...document.querySelectorAll("a[href]")].map(a => a.href),
  resources: [...document.querySelectorAll("script[src], link[rel=stylesheet][href]")].map(e => e.src || e.href),
  images: images.map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth, shown: i.clientWidth, alt: i.alt,
                            figure: !!i.closest("article"), link: (i.closest("a[href]") || {}).href || "",
                            caption: ((i.closest("figure") || {}).querySelector?.("figcaption") || {}).innerText || ""})),
}));
"""


def _executable(variable: str, names: tuple[str, ...]) -> str:
    path = os.environ.get(variable) or next(filter(None, map(shutil.which, names)), None)
    if not path or not Path(path).is_file():
        pytest.fail(f"{names[0]} not found ({variable}={os.environ.get(variable, '')!r}): {INSTALL}")
    return path


@contextlib.contextmanager
def chromium():
    """A headless Chromium (a test fails, never skips, when it is not installed)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(_executable("CHROMEDRIVER", ("chromedriver",)))  # a given driver: selenium downloads nothing
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _local(url: str) -> tuple[Path, str] | None:
    """(file, #anchor) of a file:// URL; None for other schemes (the web is not reached from here)."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path)), unquote(parts.fragment)


def site_problems(driver, root: Path) -> list[str]:
    """Open every page under ``root`` in the browser; return one line per problem found (empty: all works)."""
    root = root.resolve()
    pages = sorted(p for p in root.rglob("*.html") if not SKIPPED_DIRS & set(p.relative_to(root).parts))
    problems, described = [], {}
    for page in pages:
        name = page.relative_to(root)
        driver.get_log("browser")  # drop the previous page's messages
        driver.get(page.as_uri())
        shown = _local(driver.current_url)
        if shown and shown[0] != page and shown[0] in pages:
            continue  # a redirect (index.html) to a page checked on its own
        info = driver.execute_async_script(DESCRIBE_PAGE)
        described[page] = info
        if not info["title"] or not info["text"]:
            problems.append(f"{name}: the page shows nothing (title {info['title']!r})")
        if info["raw"] or info["rendered"] < info["maths"]:
            problems.append(f"{name}: maths not rendered ({info['rendered']} of {info['maths']} formulas"
                            + (", raw \\( or \\[ in the text)" if info["raw"] else ")"))
        for entry in driver.get_log("browser"):
            if entry["level"] == "SEVERE" and entry["source"] == "javascript" and "file://" in entry["message"]:
                problems.append(f"{name}: script error: {entry['message']}")
        for url in info["resources"]:
            target = _local(url)
            if target and not target[0].is_file():
                problems.append(f"{name}: missing script or stylesheet {url}")
        for image in info["images"]:
            target = _local(image["src"])
            if not image["width"]:
                problems.append(f"{name}: image does not show: {image['src']}")
            elif image["figure"] and target and target[0].stat().st_size < MIN_FIGURE_BYTES:
                problems.append(f"{name}: figure file under {MIN_FIGURE_BYTES} bytes: {image['src']}")
            if image["width"] and image["figure"] and target:
                problems += [f"{name}: {p}: {image['src']}" for p in figure_problems(image, target[0])]
    for page, info in described.items():
        name = page.relative_to(root)
        for url in info["links"]:
            target = _local(url)
            if target is None:
                continue
            path, anchor = target
            if root not in path.parents:
                problems.append(f"{name}: link leaves the site: {url}")
            elif not path.is_file():
                problems.append(f"{name}: broken link to {path.relative_to(root)}")
            elif anchor and path.suffix == ".html" and anchor not in described.get(path, {"ids": []})["ids"]:
                problems.append(f"{name}: link to #{anchor}, which is not on {path.relative_to(root)}")
    return problems


def figure_problems(image: dict, path: Path) -> list[str]:
    """What keeps a reader from reading a figure (``image`` as DESCRIBE_PAGE describes it, ``path`` its file)."""
    problems = []
    if not image["caption"].strip():
        problems.append("figure without a caption")
    if not image["alt"].strip() or image["alt"] in image["src"] or path.name in image["alt"]:
        problems.append(f"figure without alt text (alt {image['alt']!r})")
    if image["link"] != image["src"]:
        problems.append("figure not linked to its full-size image")
    with Image.open(path) as png:
        smallest = png.info.get(TEXT_PX_KEY)
    if smallest is None:
        problems.append(f"figure without its text size ({TEXT_PX_KEY}: draw it through ncutils.show)")
    elif float(smallest) * image["shown"] / image["width"] < READABLE_PX:
        problems.append(f"figure text {float(smallest) * image['shown'] / image['width']:.1f} px as displayed "
                        f"(under {READABLE_PX:g} px, 9 pt)")
    return problems


def save_screenshot(driver, page: Path, png: Path, max_height: int = 12000) -> Path:
    """A PNG of the whole page (up to ``max_height`` pixels), as a reader sees it at 1280 pixels wide."""
    driver.get(page.as_uri())
    driver.execute_async_script(DESCRIBE_PAGE)  # wait for the images
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    return png


def _png(path: Path, side: int, text_px: float = 15.0) -> None:
    """A real PNG image of side x side pixels, noisy so that it does not compress below 1 kB, whose smallest
    text is ``text_px`` pixels (as ``ncutils.show`` records it)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(TEXT_PX_KEY, str(text_px))
    Image.effect_noise((side, side), 64).convert("RGB").save(path, pnginfo=info)


FIGURE = ('<figure><a href="figure.png"><img src="figure.png" alt="noise" style="width: {width}px"></a>'
          "<figcaption>How to read it.</figcaption></figure>")


def _page(body: str, title: str = "page") -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body><main><article>{body}</article></main></body></html>"


@pytest.fixture
def site(tmp_path):
    """A tiny site that works: two pages, a figure, links between them with anchors, an external link."""
    (tmp_path / "sub").mkdir()
    _png(tmp_path / "sub" / "figure.png", 64)
    (tmp_path / "index.html").write_text(_page(
        '<h1 id="top">Index</h1><p><a href="sub/chapter.html#results">results</a> '
        '<a href="#top">top</a> <a href="https://example.org/">the web</a></p>'))
    (tmp_path / "sub" / "chapter.html").write_text(_page(
        '<h1 id="results">Results</h1>' + FIGURE.format(width=64) + '<a href="../index.html">back</a>'))
    return tmp_path


def test_a_working_site_has_no_problems(browser, site):
    assert site_problems(browser, site) == []


def _figure(site: Path, figure: str) -> None:
    (site / "sub" / "chapter.html").write_text(_page('<h1 id="results">Results</h1>' + figure.format(width=64)
                                                     + '<a href="../index.html">back</a>'))


@pytest.mark.parametrize("defect, expected", [
    (lambda s: (s / "sub" / "figure.png").unlink(), "sub/chapter.html: image does not show"),
    (lambda s: _png(s / "sub" / "figure.png", 4), "sub/chapter.html: figure file under 1000 bytes"),
    (lambda s: (s / "sub" / "chapter.html").write_text(_page('<h1 id="elsewhere">Results</h1>')),
     "index.html: link to #results, which is not on sub/chapter.html"),
    (lambda s: (s / "sub" / "chapter.html").rename(s / "sub" / "moved.html"),
     "index.html: broken link to sub/chapter.html"),
    (lambda s: (s / "index.html").write_text(_page("<p>text</p><script>undefined_function()</script>")),
     "index.html: script error"),
    (lambda s: (s / "index.html").write_text(_page('<p>text</p><script src="gone.js"></script>')),
     "index.html: missing script or stylesheet"),
    (lambda s: (s / "index.html").write_text(_page("", title="")), "index.html: the page shows nothing"),
    (lambda s: (s / "index.html").write_text(_page(r'<p>CDNV <span class="math">\(\sigma_k^2\)</span></p>')),
     "index.html: maths not rendered (0 of 1 formulas, raw"),
    (lambda s: _figure(s, FIGURE.replace("<figcaption>How to read it.</figcaption>", "")),
     "sub/chapter.html: figure without a caption"),
    (lambda s: _figure(s, FIGURE.replace('alt="noise"', 'alt="figure.png"')), "sub/chapter.html: figure without alt text"),
    (lambda s: _figure(s, FIGURE.replace('<a href="figure.png">', "<a>")),
     "sub/chapter.html: figure not linked to its full-size image"),
    (lambda s: _png(s / "sub" / "figure.png", 64, text_px=20) or _figure(s, FIGURE.format(width=32)),
     "sub/chapter.html: figure text 10.0 px as displayed"),
], ids=["missing figure", "empty figure", "missing anchor", "missing page", "script error", "missing script",
        "empty page", "raw maths", "no caption", "file name for alt", "no full-size link", "small text"])
def test_each_defect_is_found(browser, site, defect, expected):
    defect(site)
    problems = site_problems(browser, site)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_screenshot_is_a_png_of_the_page(browser, site, tmp_path):
    png = save_screenshot(browser, site / "sub" / "chapter.html", tmp_path / "shot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
