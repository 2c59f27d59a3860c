"""check_adapter_page.py: qinspect --adapter's HTML page rendered by headless Chromium and checked against
the JSON report of the same run.

    python3 tests/html/check_adapter_page.py PAGE.html REPORT.json

As written: self-contained (no script, a Content-Security-Policy that forbids one, nothing fetched), no
"nan" or "inf" where a figure goes. As laid out (a copy of the page with a probe script, read back with
--dump-dom): the scatter has a real size and one point per module that changed, the erased ones marked;
no text of the plot outside it or over another; one table per sort key, each with a row per module,
the survival one shown first with the lowest survival at the top, and choosing "name" (the radio button
checked as a click would) shows the name table instead, in name order; no horizontal scrolling at 1280
pixels. Prints SKIP and exits 0 when no Chromium is installed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROBE = r"""<script>
(function () {
  var out = {};
  function box(el) { var r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }
  function shown() {
    var t = {};
    document.querySelectorAll('table.sorted').forEach(function (el) {
      t[el.id] = {display: getComputedStyle(el).display,
                  rows: Array.prototype.map.call(el.querySelectorAll('tbody tr'), function (r) {
                    return r.cells[0].textContent; })};
    });
    return t;
  }
  var svg = document.getElementById('scatter'), s = box(svg);
  out.svg = [s[2] - s[0], s[3] - s[1]];
  out.points = svg.querySelectorAll('circle').length;
  out.erased_points = svg.querySelectorAll('circle.erased').length;
  out.outside = [];
  var texts = Array.prototype.map.call(svg.querySelectorAll('text, circle'), function (t) {
    var b = box(t);
    if (b[0] < s[0] - 1 || b[1] < s[1] - 1 || b[2] > s[2] + 1 || b[3] > s[3] + 1)
      out.outside.push(t.textContent.slice(0, 60) || t.tagName);
    return {b: b, s: t.textContent, text: t.tagName == 'text'};
  });
  out.overlap = [];
  for (var i = 0; i < texts.length; i++)
    for (var j = i + 1; j < texts.length; j++) {
      if (!texts[i].text || !texts[j].text) continue;
      var a = texts[i].b, c = texts[j].b;
      if (Math.min(a[2], c[2]) - Math.max(a[0], c[0]) > 1 && Math.min(a[3], c[3]) - Math.max(a[1], c[1]) > 1.5)
        out.overlap.push([texts[i].s, texts[j].s]);
    }
  out.first = shown();
  document.getElementById('by-name').checked = true;
  out.by_name = shown();
  out.scroll = [document.documentElement.scrollWidth, document.documentElement.clientWidth];
  var pre = document.createElement('pre');
  pre.id = 'probe-out';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def browser():
    for b in os.environ.get("QI_CHROMIUM", "chromium-headless-shell chromium chromium-browser").split():
        if shutil.which(b):
            return b
    return None


def main():
    page_path, report_path = sys.argv[1:3]
    b = browser()
    if not b:
        print("SKIP: chromium is not installed (apt-get install chromium-headless-shell)")
        return 0
    page = open(page_path, encoding="utf-8").read()
    fid = json.load(open(report_path))["fidelity"]
    failed = []

    def ok(cond, what):
        if not cond:
            failed.append(what)

    ok("<script" not in page.lower(), "the page has a script")
    ok("Content-Security-Policy" in page and "default-src 'none'" in page, "no Content-Security-Policy")
    ok(not re.search(r"(?<![a-z])(nan|inf)(?![a-z])", re.sub(r"<[^>]*>", " ", page), re.I), "nan or inf in the text")
    ok(not re.search(r'="[^"]*(nan|inf)[^"]*"', page), "nan or inf in an attribute")
    with tempfile.TemporaryDirectory() as tmp:
        probe = f"{tmp}/probe.html"
        at = page.rindex("</body>")
        # the copy drops the policy that forbids the probe
        open(probe, "w", encoding="utf-8").write(
            re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page[:at]) + PROBE + page[at:])
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp}/p",
                 "--window-size=1280,2400"]
        dom = subprocess.run(["timeout", "120", b, *flags, "--dump-dom", f"file://{probe}"], capture_output=True,
                             text=True).stdout
        shot = subprocess.run(["timeout", "120", b, *flags, f"--screenshot={tmp}/shot.png", f"file://{os.path.abspath(page_path)}"],
                              capture_output=True)
        ok(os.path.exists(f"{tmp}/shot.png") and os.path.getsize(f"{tmp}/shot.png") > 10000, "no screenshot")
    m = re.search(r'<pre id="probe-out">(.*?)</pre>', dom, re.S)
    if not m:
        print("FAIL: the probe did not run")
        return 1
    out = json.loads(m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))
    mods = fid["modules"]
    changed = [x for x in mods if x["adapter_norm"] and x["residual"] is not None]
    ok(out["svg"][0] > 400 and out["svg"][1] > 200, f"scatter size {out['svg']}")
    ok(out["points"] == len(changed), f"{out['points']} points, {len(changed)} modules changed")
    ok(out["erased_points"] == sum(x["erased"] for x in changed), f"{out['erased_points']} erased points")
    ok(not out["outside"], f"outside the plot: {out['outside'][:5]}")
    ok(not out["overlap"], f"texts over one another: {out['overlap'][:5]}")
    names = [x["name"] for x in mods]
    for when, visible in (("first", "t-survival"), ("by_name", "t-name")):
        tables = out[when]
        ok(len(tables) == 5, f"{len(tables)} sorted tables")
        for tid, t in tables.items():
            ok(sorted(t["rows"]) == sorted(names), f"{tid}: rows are not the modules")
            ok((t["display"] != "none") == (tid == visible), f"{when}: {tid} display {t['display']}")
    by_survival = out["first"]["t-survival"]["rows"]
    lowest = min((x for x in mods if x["survival"] is not None), key=lambda x: x["survival"])
    ok(by_survival[0] == lowest["name"], f"the survival table starts with {by_survival[0]}, not {lowest['name']}")
    ok(out["by_name"]["t-name"]["rows"] == names, "the name table is not in name order")
    ok(out["scroll"][0] <= out["scroll"][1], f"horizontal scrolling: {out['scroll']}")
    for f in failed:
        print(f"FAIL: {f}")
    print(f"{'ok' if not failed else 'FAIL'}: adapter page, {len(mods)} modules, {out['points']} points, "
          f"{out['erased_points']} erased, sorting by survival and by name")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
