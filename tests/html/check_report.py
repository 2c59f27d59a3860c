#!/usr/bin/env python3
"""The checks of check_report.sh (which runs Chromium): standard library only.

  check_report.py probe HTML_FILE PROBE_OUT       a copy of the page with a script that measures it
  check_report.py check HTML_FILE DOM_FILE PNG    the checks; prints each, exit status 1 when one failed

The page has no script and a Content-Security-Policy that forbids one. The probe copy drops the policy
and appends a script that, once the page is laid out, writes what it measured (sizes of the plots, counts
of their marks, boxes of their texts, rows of the tables) as JSON into a hidden <pre id="qi-probe">;
Chromium's --dump-dom gives it back.
"""
import html
import json
import os
import re
import struct
import sys
import zlib

CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">\n?')

PROBE = r"""<script>
(function () {
  var out = {svgs: {}};
  var de = document.documentElement;
  out.viewport = [window.innerWidth, window.innerHeight];
  out.scroll_width = de.scrollWidth;
  out.client_width = de.clientWidth;
  out.scripts = document.scripts.length - 1;  /* this one not counted */
  var main = document.getElementById('report');
  out.data = main ? Object.assign({}, main.dataset) : null;
  function count(sel) { return document.querySelectorAll(sel).length; }
  function box(el) { var r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }
  document.querySelectorAll('svg').forEach(function (svg) {
    var s = box(svg), info = {width: s[2] - s[0], height: s[3] - s[1], top: s[1] + window.scrollY};
    info.pt = svg.querySelectorAll('.pt').length;
    info.bar = svg.querySelectorAll('.bar').length;
    info.row = svg.querySelectorAll('.bar-row').length;
    info.seg = svg.querySelectorAll('.seg').length;
    info.outside = [];  /* marks or texts reaching outside the SVG */
    info.empty = 0;     /* points that rendered with no size */
    svg.querySelectorAll('.pt, .bar, .seg, text').forEach(function (el) {
      var b = box(el);
      if (b[0] < s[0] - 1 || b[1] < s[1] - 1 || b[2] > s[2] + 1 || b[3] > s[3] + 1)
        info.outside.push((el.textContent || el.tagName).slice(0, 60));
      if (el.classList.contains('pt') && (b[2] - b[0] < 1 || b[3] - b[1] < 1))
        info.empty++;
    });
    /* texts drawn over one another: boxes overlapping by more than a pixel both ways */
    var texts = Array.prototype.map.call(svg.querySelectorAll('text'), function (t) {
      return {b: box(t), s: t.textContent};
    });
    info.texts = texts.length;
    info.overlap = [];
    for (var i = 0; i < texts.length; i++)
      for (var j = i + 1; j < texts.length; j++) {
        var a = texts[i].b, c = texts[j].b;
        var w = Math.min(a[2], c[2]) - Math.max(a[0], c[0]), h = Math.min(a[3], c[3]) - Math.max(a[1], c[1]);
        if (w > 1 && h > 1.5 && info.overlap.length < 10)
          info.overlap.push([texts[i].s, texts[j].s]);
      }
    out.svgs[svg.id || ('svg' + Object.keys(out.svgs).length)] = info;
  });
  /* tables wider than the column of the page they sit in (which a window narrower than the page's
   * 1160 pixels would scroll) */
  out.wide_tables = [];
  document.querySelectorAll('table').forEach(function (t) {
    var p = t.parentElement, cs = getComputedStyle(p);
    var room = p.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    if (t.getBoundingClientRect().width > room + 1)
      out.wide_tables.push((t.id || 'table') + ' ' + Math.round(t.getBoundingClientRect().width) + ' px in ' + Math.round(room));
  });
  out.rows = count('#tensors > tbody > tr');
  out.fail_rows = count('#tensors > tbody > tr.fail');
  out.bad_cells = count('#tensors td.bad');
  out.worst_rows = count('#worst > tbody > tr');
  out.notes = Array.prototype.map.call(document.querySelectorAll('p.note[id]'), function (p) { return p.id; });
  /* Tensor names in the tables: where they wrap, and what copying one gives. A line break between two
   * characters of a word (letters, digits, '_') is a break in the middle of a word, allowed only inside a
   * component (what lies between two dots) wider than the cell itself; a name must break at its dots. */
  out.names = {cells: 0, wrapped: 0, midword: [], copy_bad: []};
  var wordch = /[A-Za-z0-9_]/;
  Array.prototype.slice.call(document.querySelectorAll('#tensors td.name, #worst td.name'), 0, 600).forEach(function (td) {
    out.names.cells++;
    var cs = getComputedStyle(td);
    var width = td.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    var chars = [];
    td.childNodes.forEach(function (n) {
      if (n.nodeType !== 3)
        return;
      for (var i = 0; i < n.data.length; i++) {
        var r = document.createRange();
        r.setStart(n, i);
        r.setEnd(n, i + 1);
        var b = r.getBoundingClientRect();
        chars.push({c: n.data[i], top: b.top, w: b.width});
      }
    });
    var lines = 1;
    for (var i = 0; i + 1 < chars.length; i++) {
      if (!(chars[i + 1].top > chars[i].top + 1))
        continue;
      lines++;
      if (!wordch.test(chars[i].c) || !wordch.test(chars[i + 1].c))
        continue;
      var a = i, z = i + 1, w = 0;
      while (a > 0 && chars[a - 1].c !== '.') a--;
      while (z + 1 < chars.length && chars[z + 1].c !== '.') z++;
      for (var k = a; k <= z; k++) w += chars[k].w;
      if (w <= width + 1 && out.names.midword.length < 10)
        out.names.midword.push(chars.slice(a, z + 1).map(function (x) { return x.c; }).join('') +
                               ' broken after "' + chars[i].c + '" (' + Math.round(w) + ' px in a cell of ' +
                               Math.round(width) + ')');
    }
    if (lines > 1)
      out.names.wrapped++;
    /* what a reader copies: the name itself, nothing added where it wraps */
    var sel = window.getSelection(), range = document.createRange();
    sel.removeAllRanges();
    range.selectNodeContents(td);
    sel.addRange(range);
    var copied = sel.toString();
    sel.removeAllRanges();
    if (copied !== td.textContent && out.names.copy_bad.length < 5)
      out.names.copy_bad.push([copied, td.textContent]);
  });
  out.verdict = (document.getElementById('verdict') || {}).textContent || null;
  out.page_height = de.scrollHeight;
  var pre = document.createElement('pre');
  pre.id = 'qi-probe';
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""

PLOTS = ('plot-rel-err', 'plot-codes', 'plot-absmax', 'plot-bits')
ABSMAX_BINS = 40  # QI_ABSMAX_BINS in tools/qinspect_report.h


def probe(src, dst):
    page = open(src, encoding='utf-8', errors='replace').read()
    page = CSP.sub('', page, count=1)
    at = page.rfind('</body>')
    if at < 0:
        at = len(page)
    open(dst, 'w', encoding='utf-8').write(page[:at] + PROBE + page[at:])


# ------------------------------------------------------------------------------------------- PNG

def read_png(path):
    """(width, height, channels, rows) of an 8-bit RGB or RGBA PNG, as Chromium writes them."""
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG file')
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        n, typ = struct.unpack('>I4s', data[pos:pos + 8])
        if typ == b'IHDR':
            hdr = struct.unpack('>IIBBBBB', data[pos + 8:pos + 21])
        elif typ == b'IDAT':
            idat.append(data[pos + 8:pos + 8 + n])
        elif typ == b'IEND':
            break
        pos += 12 + n
    if not hdr:
        raise ValueError('no IHDR chunk')
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError('unsupported PNG: depth %d, colour type %d, interlace %d' % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError('PNG data is %d bytes, not %d' % (len(raw), h * (stride + 1)))
    prev, rows = bytearray(stride), []
    for y in range(h):  # undo the row filters (PNG spec 9.2)
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise ValueError('bad PNG filter %d' % kind)
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def pixel_stats(rows, bpp):
    """Over every other pixel of every other row: the share not white, the share white, and the number of
    distinct saturated colours (3 bits a channel, at least 50 pixels each: the plots' hues, not
    anti-aliasing)."""
    total = nonwhite = white = 0
    colours = {}
    for row in rows[::2]:
        for i in range(0, len(row), 2 * bpp):
            r, g, b = row[i], row[i + 1], row[i + 2]
            total += 1
            if r > 245 and g > 245 and b > 245:
                white += 1
                continue
            if r < 240 or g < 240 or b < 240:
                nonwhite += 1
            if max(r, g, b) - min(r, g, b) > 60:
                key = (r >> 5, g >> 5, b >> 5)
                colours[key] = colours.get(key, 0) + 1
    return nonwhite / total, white / total, sum(1 for n in colours.values() if n >= 50)


# ---------------------------------------------------------------------------------------- checks

class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, what, detail=''):
        """Prints the check; detail (what was expected, what went wrong) only when it failed."""
        print('%s: %s%s' % ('ok  ' if cond else 'FAIL', what, (' (' + detail + ')') if detail and not cond else ''))
        if not cond:
            self.failed += 1
        return cond


def static_checks(c, raw):
    """The page as written: self-contained, nothing that is not a number where numbers go."""
    try:
        text = raw.decode('utf-8')
        c.ok(True, 'the page is valid UTF-8')
    except UnicodeDecodeError as e:
        c.ok(False, 'the page is valid UTF-8', str(e))
        text = raw.decode('utf-8', errors='replace')
    controls = re.findall(r'[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]', text)
    c.ok(not controls, 'no control characters (names are shown with U+FFFD instead)',
         ', '.join(sorted(set('U+%04X' % ord(ch) for ch in controls))[:5]))
    c.ok(text.startswith('<!DOCTYPE html>'), 'starts with <!DOCTYPE html>')
    c.ok('<meta charset="utf-8">' in text, 'declares its charset')
    m = CSP.search(text)
    c.ok(bool(m) and "default-src 'none'" in m.group(0), "Content-Security-Policy default-src 'none'")
    # Tags and attributes that run or fetch something; tensor names are escaped, so a '<' in the page is
    # always markup.
    bad = re.findall(r'<(?:script|link|img|iframe|object|embed|image|use|foreignObject|base|audio|video|source)'
                     r'[\s>/]|\ssrc\s*=|url\s*\(|@import|\son[a-z]+\s*=|javascript:', text, re.I)
    c.ok(not bad, 'no script, nothing to fetch', ', '.join(sorted(set(bad))[:5]))
    hrefs = re.findall(r'\shref\s*=\s*"([^"]*)"', text)
    c.ok(all(h.startswith('#') for h in hrefs), 'links only within the page (%d)' % len(hrefs))
    # SVG geometry: numbers only (no nan/inf from a division by zero).
    geometry = re.findall(r'\s(?:x|y|x1|x2|y1|y2|cx|cy|r|width|height|d|transform|viewBox)="([^"]*)"', text)
    odd = [g for g in geometry if re.search(r'nan|inf', g, re.I)]
    c.ok(not odd, 'every SVG coordinate is a number (%d attributes)' % len(geometry), ', '.join(odd[:3]))
    # Figures in cells and labels: "∞" and "—", never printf's "inf"/"nan".
    odd = re.findall(r'>\s*[-+]?(?:nan|inf(?:inity)?)\b[^<]{0,20}<', text, re.I)
    c.ok(not odd, 'no "nan" or "inf" printed as a figure', ', '.join(odd[:3]))


def expected_counts(c, data):
    exp = {}
    for key in ('tensors', 'compared', 'quantized', 'failed'):
        env = os.environ.get('QI_EXPECT_' + key.upper())
        page = (data or {}).get(key)
        if env is not None:
            exp[key] = int(env)
            if page is not None:
                c.ok(int(page) == exp[key], 'the page says data-%s="%s", as QI_EXPECT_%s' % (key, page, key.upper()),
                     'expected %s' % env)
        elif page is not None:
            exp[key] = int(page)
        else:
            c.ok(False, 'the page says how many tensors are %s (data-%s)' % (key, key))
            exp[key] = 0
    return exp


def plot_checks(c, probe_out, exp):
    svgs = probe_out['svgs']
    notes = set(probe_out['notes'])
    # A plot is there, or (only when there is nothing to draw) a note in its place.
    want = {
        'plot-rel-err': exp['compared'] > 0,
        'plot-codes': exp['quantized'] > 0,
        'plot-absmax': exp['quantized'] > 0,
        'plot-bits': exp['tensors'] > 0,
    }
    for pid in PLOTS:
        s = svgs.get(pid)
        if not want[pid]:
            c.ok(s is None and pid + '-none' in notes, '%s left out, with a note (nothing to plot)' % pid)
            continue
        if not c.ok(s is not None, '<svg id="%s"> is in the page' % pid):
            continue
        c.ok(s['width'] >= 300 and s['height'] >= 100, '%s rendered %.0fx%.0f px' % (pid, s['width'], s['height']))
        c.ok(not s['outside'], '%s: every mark and label inside the plot' % pid, ', '.join(s['outside'][:5]))
        c.ok(not s['overlap'], '%s: no label over another (%d labels)' % (pid, s['texts']),
             '; '.join(' / '.join(p) for p in s['overlap'][:3]))
    s = svgs.get('plot-rel-err')
    if s and want['plot-rel-err']:
        c.ok(s['pt'] == exp['compared'], 'plot-rel-err: %d points, one per compared tensor' % s['pt'],
             'expected %d' % exp['compared'])
        c.ok(s['empty'] == 0, 'plot-rel-err: every point has a size', '%d without' % s['empty'])
    s = svgs.get('plot-codes')
    if s and want['plot-codes']:
        c.ok(s['bar'] == 16, 'plot-codes: %d bars, one per 4-bit code' % s['bar'], 'expected 16')
    s = svgs.get('plot-absmax')
    if s and want['plot-absmax']:
        c.ok(s['bar'] == ABSMAX_BINS, 'plot-absmax: %d bars, one per bin' % s['bar'], 'expected %d' % ABSMAX_BINS)
    s = svgs.get('plot-bits')
    if s and want['plot-bits']:
        rows = (exp['quantized'] > 0) + (exp['tensors'] > exp['quantized']) + 1
        c.ok(s['row'] == rows, 'plot-bits: %d stacked bars (quantized, not quantized, all)' % s['row'],
             'expected %d' % rows)
        c.ok(s['seg'] >= s['row'], 'plot-bits: %d parts in the bars' % s['seg'])
    tops = [svgs[p]['top'] for p in PLOTS if p in svgs]
    c.ok(tops == sorted(tops), 'the plots come in order, one under another')


def page_checks(c, probe_out, exp):
    c.ok(probe_out['scripts'] == 0, 'no script in the page (%d)' % probe_out['scripts'])
    c.ok(probe_out['rows'] == exp['tensors'], 'table#tensors: %d rows, one per tensor' % probe_out['rows'],
         'expected %d' % exp['tensors'])
    c.ok(probe_out['fail_rows'] == exp['failed'], 'table#tensors: %d rows marked as failing a gate'
         % probe_out['fail_rows'], 'expected %d' % exp['failed'])
    c.ok((probe_out['bad_cells'] > 0) == (exp['failed'] > 0),
         'table#tensors: %d failing figures highlighted' % probe_out['bad_cells'])
    if exp['compared'] and 'worst-none' in probe_out['notes']:
        # every compared tensor equals its reference: nothing ranked
        c.ok(probe_out['worst_rows'] == 0, 'table#worst left out, with a note (no error to rank)')
    elif exp['compared']:
        c.ok(1 <= probe_out['worst_rows'] <= min(20, exp['compared']),
             'table#worst: %d rows (1 to 20)' % probe_out['worst_rows'])
    verdict = probe_out['verdict']
    c.ok(verdict in ('PASS', 'FAIL', 'no gates') and (verdict != 'PASS' or exp['failed'] == 0)
         and (exp['failed'] == 0 or verdict == 'FAIL'), 'verdict %s' % verdict)
    names = probe_out['names']
    c.ok(not names['midword'], 'tensor names wrap at their dots, never inside a word (%d cells, %d wrapped)'
         % (names['cells'], names['wrapped']), '; '.join(names['midword'][:3]))
    c.ok(not names['copy_bad'], 'a tensor name copies as it is (%d cells)' % names['cells'],
         '; '.join('%r for %r' % tuple(p) for p in names['copy_bad'][:2]))
    c.ok(not probe_out['wide_tables'], 'every table fits the page\'s column', '; '.join(probe_out['wide_tables'][:3]))
    c.ok(probe_out['scroll_width'] <= probe_out['client_width'],
         'no horizontal scrolling (page %d px wide, window %d)' % (probe_out['scroll_width'],
                                                                    probe_out['client_width']))


def screenshot_checks(c, png, exp):
    """How much ink and how many hues depend on what the page holds: every plot (errors coloured by
    module kind, blue codes, orange absmax), a few (a float checkpoint described: only the bits), or
    only text (an empty selection)."""
    try:
        w, h, bpp, rows = read_png(png)
    except (OSError, ValueError, zlib.error) as e:
        c.ok(False, 'the screenshot decodes', str(e))
        return
    c.ok((w, h) == (1280, 2400), 'screenshot %dx%d' % (w, h))
    nonwhite, white, colours = pixel_stats(rows, bpp)
    if exp['compared'] and exp['quantized']:
        ink, hues = 0.03, 5
    elif exp['tensors']:
        ink, hues = 0.02, 2
    else:
        ink, hues = 0.005, 1
    c.ok(ink <= nonwhite and white >= 0.3, 'screenshot not blank: %.1f%% of pixels not white, %.1f%% white'
         % (100 * nonwhite, 100 * white), 'want at least %g%% not white and 30%% white' % (100 * ink))
    c.ok(colours >= hues, 'screenshot shows %d distinct colours' % colours, 'want %d or more' % hues)


def check(html_file, dom_file, png):
    c = Checks()
    raw = open(html_file, 'rb').read()
    print('page: %s (%d bytes)' % (html_file, len(raw)))
    static_checks(c, raw)
    dom = open(dom_file, encoding='utf-8', errors='replace').read()
    m = re.search(r'<pre id="qi-probe"[^>]*>(.*?)</pre>', dom, re.S)
    if not c.ok(bool(m), 'the page rendered and the probe measured it'):
        return 1
    out = json.loads(html.unescape(m.group(1)))
    exp = expected_counts(c, out['data'])
    print('expect: %s' % ', '.join('%s %d' % kv for kv in exp.items()))
    plot_checks(c, out, exp)
    page_checks(c, out, exp)
    screenshot_checks(c, png, exp)
    print('check_report: %s (%s)' % ('FAILED %d checks' % c.failed if c.failed else 'all checks passed', png))
    return 1 if c.failed else 0


def main(argv):
    if len(argv) == 4 and argv[1] == 'probe':
        probe(argv[2], argv[3])
        return 0
    if len(argv) == 5 and argv[1] == 'check':
        return check(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
