/* dsguard report: sorting, filtering and expanding server-rendered tables.
   Inlined and allowed by its CSP hash. It reads only the DOM (textContent and data-*
   attributes) and never builds HTML from strings, so hostile text cannot become markup. */
(function () {
  "use strict";

  function units(table) {
    if (table.classList.contains("grouped")) {
      return Array.prototype.slice.call(table.tBodies);
    }
    var body = table.tBodies[0];
    return body ? Array.prototype.slice.call(body.rows) : [];
  }

  function firstRow(unit) {
    return unit.rows ? unit.rows[0] : unit;
  }

  function sortKey(unit, col, numeric) {
    var cell = firstRow(unit).cells[col];
    if (!cell) {
      return numeric ? -Infinity : "";
    }
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    raw = raw.trim();
    if (numeric) {
      var n = parseFloat(raw.replace(/,/g, ""));
      return isNaN(n) ? -Infinity : n;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var dir = current === "descending" ? 1 : current === "ascending" ? -1 : numeric ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var list = units(table).filter(function (u) { return firstRow(u).cells.length > 1; });
    list.sort(function (a, b) {
      var ka = sortKey(a, col, numeric);
      var kb = sortKey(b, col, numeric);
      if (ka < kb) { return -dir; }
      if (ka > kb) { return dir; }
      return 0;
    });
    var parent = table.classList.contains("grouped") ? table : table.tBodies[0];
    list.forEach(function (u) { parent.appendChild(u); });
  }

  var textCache = new WeakMap();
  function textOf(unit) {
    var t = textCache.get(unit);
    if (t === undefined) {
      t = unit.textContent.toLowerCase();
      textCache.set(unit, t);
    }
    return t;
  }

  function applyFilters(tableId) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    var box = document.querySelector('input.filter[data-table="' + tableId + '"]');
    var terms = box ? box.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    var facets = Array.prototype.slice.call(
      document.querySelectorAll('select.facet[data-table="' + tableId + '"]'));
    var all = units(table);
    var shown = 0;
    all.forEach(function (u) {
      var ok = terms.every(function (t) { return textOf(u).indexOf(t) !== -1; });
      facets.forEach(function (sel) {
        var want = sel.value;
        if (want && u.getAttribute("data-" + sel.getAttribute("data-key")) !== want) {
          ok = false;
        }
      });
      u.hidden = !ok;
      if (ok) { shown += 1; }
    });
    var count = document.querySelector('[data-count-for="' + tableId + '"]');
    if (count) {
      count.textContent = shown === all.length
        ? all.length + " rows"
        : shown + " of " + all.length + " rows";
    }
  }

  function setExpanded(button, open) {
    var target = document.getElementById(button.getAttribute("aria-controls"));
    if (!target) { return; }
    target.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function expandAll(tableId, open) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    Array.prototype.forEach.call(table.querySelectorAll("button.expander"), function (b) {
      if (!open || !b.closest("tbody").hidden) { setExpanded(b, open); }
    });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var head = table.tHead;
    if (!head) { return; }
    Array.prototype.forEach.call(head.rows[0].cells, function (th) {
      if (th.classList.contains("nosort")) { return; }
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          sortTable(table, th);
        }
      });
    });
  });

  var filtered = {};
  document.querySelectorAll("input.filter, select.facet").forEach(function (el) {
    var id = el.getAttribute("data-table");
    filtered[id] = true;
    el.addEventListener(el.tagName === "INPUT" ? "input" : "change", function () {
      applyFilters(id);
    });
  });
  Object.keys(filtered).forEach(applyFilters);

  document.addEventListener("click", function (e) {
    var target = e.target;
    if (!(target instanceof Element)) { return; }
    var exp = target.closest("button.expander");
    if (exp) {
      setExpanded(exp, exp.getAttribute("aria-expanded") !== "true");
      return;
    }
    var all = target.closest("[data-expand],[data-collapse]");
    if (all) {
      var open = all.hasAttribute("data-expand");
      expandAll(all.getAttribute(open ? "data-expand" : "data-collapse"), open);
      return;
    }
    var view = target.closest("button[data-view]");
    if (view) {
      var box = view.closest(".views");
      box.querySelectorAll(".view").forEach(function (v) {
        v.hidden = v.id !== view.getAttribute("data-view");
      });
      box.querySelectorAll("button[data-view]").forEach(function (b) {
        var on = b === view;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }
  });

  // Printing a report should show the evidence, not the collapsed rows.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("table.grouped").forEach(function (t) { expandAll(t.id, true); });
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });
})();
