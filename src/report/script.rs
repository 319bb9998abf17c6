//! The page's one script, inline and allowed by its hash (see
//! `theme::content_security_policy`): no fetch, no `eval`, no handler
//! attributes, no `style=`, so it runs from `file://` under the policy.
//!
//! - Sorting: click (or Enter on) a header of a `table.sortable`; again to
//!   reverse. Cells may carry `data-sort`; `data-type="num"` headers sort as
//!   numbers. Ties keep the previous order, so two sorts in turn combine.
//! - The flagged flows: a filter box (every word must appear in the row), a
//!   verdict list, a host box (client or server address, or a prefix that
//!   ends with `.` or `:`: `10.10.1.`) and a port box (the server's port, exactly); pages of
//!   [`PAGE_ROWS`] rows; CSV download of every row the filters keep.
//! - Drill-down: a host node of the diagram fills the host box.

/// Rows of the flagged-flows table per page (the script's `PAGE`).
pub const PAGE_ROWS: usize = 100;

pub const SCRIPT: &str = r#"
(function () {
  'use strict';
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };
  var byId = function (id) { return document.getElementById(id); };
  function key(cell, num) {
    var v = cell.getAttribute('data-sort');
    if (v === null) { v = cell.textContent.trim(); }
    return num ? (parseFloat(v) || 0) : v.toLowerCase();
  }
  each(document.querySelectorAll('table.sortable'), function (table) {
    var heads = table.tHead.rows[0].cells;
    each(heads, function (th, col) {
      th.tabIndex = 0;
      function sort() {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var num = th.getAttribute('data-type') === 'num';
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        each(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        var keyed = rows.map(function (r, i) { return { r: r, i: i, k: key(r.cells[col], num) }; });
        keyed.sort(function (a, b) {
          if (a.k < b.k) { return -dir; }
          if (a.k > b.k) { return dir; }
          return a.i - b.i;
        });
        keyed.forEach(function (e) { body.appendChild(e.r); });
        table.dispatchEvent(new Event('sorted'));
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sort(); } });
    });
  });

  var table = byId('flagged-table');
  if (!table) { return; }
  var PAGE = 100, page = 0, kept = [];
  var text = byId('flagged-filter'), verdict = byId('flagged-verdict');
  var host = byId('flagged-host'), port = byId('flagged-port');
  var info = byId('flagged-info'), prev = byId('flagged-prev'), next = byId('flagged-next');
  var body = table.tBodies[0];
  var total = body.rows.length;
  // Each row's text, lower case, read once: filtering 10,000 rows stays quick.
  each(body.rows, function (r) { r.searchText = r.textContent.toLowerCase(); });
  // An address, or a prefix that ends a group (`10.10.1.`, `fd00:10:`):
  // `10.10.1.1` is not `10.10.1.10`.
  function sameHost(ip, h) {
    var end = h.charAt(h.length - 1);
    return ip === h || ((end === '.' || end === ':') && ip.indexOf(h) === 0);
  }
  function matches(r) {
    var words = text.value.toLowerCase().split(/\s+/);
    for (var i = 0; i < words.length; i++) {
      if (words[i] && r.searchText.indexOf(words[i]) < 0) { return false; }
    }
    if (verdict.value && r.getAttribute('data-verdict') !== verdict.value) { return false; }
    var h = host.value.trim();
    if (h && !sameHost(r.getAttribute('data-client'), h) &&
        !sameHost(r.getAttribute('data-server'), h)) { return false; }
    var p = port.value.trim();
    return !p || r.getAttribute('data-port') === p;
  }
  function show() {
    var pages = Math.max(1, Math.ceil(kept.length / PAGE));
    page = Math.max(0, Math.min(page, pages - 1));
    kept.forEach(function (r, i) { r.classList.toggle('p-out', Math.floor(i / PAGE) !== page); });
    var first = kept.length ? page * PAGE + 1 : 0;
    var last = Math.min(kept.length, (page + 1) * PAGE);
    info.textContent = 'rows ' + first + '\u2013' + last + ' of ' + kept.length +
      (kept.length === total ? '' : ' (filtered from ' + total + ')') +
      ' \u00b7 page ' + (page + 1) + ' of ' + pages;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  function filter() {
    kept = [];
    each(body.rows, function (r) {
      var ok = matches(r);
      r.classList.toggle('f-out', !ok);
      r.classList.remove('p-out');
      if (ok) { kept.push(r); }
    });
    page = 0;
    show();
  }
  [text, host, port].forEach(function (box) { box.addEventListener('input', filter); });
  verdict.addEventListener('change', filter);
  table.addEventListener('sorted', function () {
    kept = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains('f-out'); });
    show();
  });
  prev.addEventListener('click', function () { page -= 1; show(); });
  next.addEventListener('click', function () { page += 1; show(); });
  byId('flagged-clear').addEventListener('click', function () {
    text.value = ''; verdict.value = ''; host.value = ''; port.value = '';
    filter();
  });
  function csvCell(cell) {
    var v = (cell.getAttribute('data-csv') || cell.textContent).trim();
    // A spreadsheet would run a cell that starts with = + - @ as a formula.
    if (/^[=+\-@]/.test(v)) { v = "'" + v; }
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  byId('flagged-csv').addEventListener('click', function () {
    var lines = [table.tHead.rows[0]].concat(kept).map(function (r) {
      return Array.prototype.map.call(r.cells, csvCell).join(',');
    });
    var blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' });
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'flagged-flows.csv';
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  each(document.querySelectorAll('#diagram-svg [data-host]'), function (node) {
    node.addEventListener('click', function () {
      host.value = node.getAttribute('data-host');
      filter();
      table.scrollIntoView();
    });
  });
  filter();
}());
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_size_is_the_scripts() {
        assert!(SCRIPT.contains(&format!("var PAGE = {PAGE_ROWS},")));
    }
}
