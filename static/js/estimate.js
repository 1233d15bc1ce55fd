/* Sheaf upload estimate: what the chosen files will cost, before they are sent.

   The server renders its prices as data attributes of [data-estimate] (see
   extraction/claude/pricing.py `estimate_rates`, whose `estimate_cost` this mirrors): a text
   file (TXT, CSV, XML) is about a token per 4 bytes, anything else (PDF, image, spreadsheet) is
   priced by its pages as a scan would be, ~1,500 tokens a page; each document adds the
   instructions, and ~100 answer tokens a field. A PDF's pages are counted in its bytes here.
   With a free engine ([data-free]) the estimate says so. */
(function () {
  "use strict";

  var TEXT = [".txt", ".csv", ".xml"];
  var pageCounts = typeof WeakMap === "function" ? new WeakMap() : null;
  var MAX_READ = 64 * 1024 * 1024;

  function extension(name) {
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot).toLowerCase() : "";
  }

  function countPages(file) {
    if (pageCounts && pageCounts.has(file)) return Promise.resolve(pageCounts.get(file));
    if (!file.arrayBuffer || file.size > MAX_READ) return Promise.resolve(1);
    return file.arrayBuffer().then(function (buffer) {
      var text = new TextDecoder("latin1").decode(buffer);
      var pages = (text.match(/\/Type\s*\/Page(?![A-Za-z])/g) || []).length;
      if (!pages) {
        // Pages kept in compressed object streams: the page tree's /Count, if it is readable.
        var count = /\/Type\s*\/Pages\b[^>]*?\/Count\s+(\d+)/.exec(text);
        pages = count ? parseInt(count[1], 10) : 1;
      }
      if (pageCounts) pageCounts.set(file, pages);
      return pages;
    }, function () { return 1; });
  }

  function measure(listed) {
    return Promise.all(listed.map(function (item) {
      var ext = extension(item.name);
      if (TEXT.indexOf(ext) !== -1) return { characters: item.size, pages: 1 };
      if (ext === ".pdf" && item.file) {
        return countPages(item.file).then(function (pages) {
          return { characters: 0, pages: pages };
        });
      }
      return { characters: 0, pages: 1 };
    }));
  }

  function fieldCount(form) {
    var fields = form.querySelector('[name="fields"]');
    var text = fields ? fields.value.trim() : "";
    var items = text.indexOf("\n") !== -1 ? text.split("\n") : text.split(",");
    if (!text) {
      var prompt = form.querySelector('[name="prompt"]');
      items = (prompt ? prompt.value : "").split(/,|;|\n|\band\b/);
    }
    var n = items.filter(function (item) { return item.trim(); }).length;
    return Math.max(n, 1);
  }

  function number(n) {
    return Math.round(n).toLocaleString("en-US");
  }

  function dollars(amount) {
    if (amount > 0 && amount < 0.01) return "under $0.01";
    return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function plural(n, word) {
    return number(n) + " " + word + (n === 1 ? "" : "s");
  }

  function init(box) {
    var form = box.closest("form");
    var out = box.querySelector("[data-estimate-text]");
    if (!form || !out || !window.Promise) return;
    var free = box.hasAttribute("data-free");
    function rate(name) { return parseFloat(box.getAttribute("data-" + name)); }
    var priced = !free && !isNaN(rate("input-per-million"));
    var single = form.querySelector("input[data-single-file]");
    var generation = 0;

    function listed() {
      if (form.sheafListedFiles) return form.sheafListedFiles();
      var files = single && single.files ? Array.prototype.slice.call(single.files) : [];
      return files.map(function (file) { return { name: file.name, size: file.size, file: file }; });
    }

    function update() {
      var files = listed();
      var mine = ++generation;
      if (!files.length) {
        out.textContent = free
          ? "The offline engine is free: $0."
          : "Choose files to see an estimate of what they will cost.";
        return;
      }
      measure(files).then(function (sizes) {
        if (mine !== generation) return; // a later change is being measured
        var fields = fieldCount(form);
        var pages = 0;
        var input = 0;
        var output = 0;
        sizes.forEach(function (size) {
          pages += size.pages;
          input += (size.characters
            ? Math.floor(size.characters / rate("characters-per-token"))
            : size.pages * (rate("tokens-per-page") || 1500)) + (rate("instruction-tokens") || 600);
          output += (rate("tokens-per-field") || 100) * fields + (rate("answer-tokens") || 50);
        });
        if (free) {
          // The offline engine reads no tokens; pages are what the batch holds.
          out.textContent = plural(files.length, "file") + ", " + plural(pages, "page") +
            ". The offline engine is free: $0.";
          return;
        }
        var text = plural(files.length, "file") + ", " + plural(pages, "page") + ": about " +
          plural(input + output, "token");
        if (priced) {
          var cost = (input * rate("input-per-million") + output * rate("output-per-million")) / 1e6;
          text += ", about " + dollars(cost) + " (economy lane: about " +
            dollars(cost * rate("economy-factor")) + ")";
        } else {
          text += "; no price is configured for this model";
        }
        out.textContent = text + ".";
      });
    }

    form.addEventListener("sheaf:files", update);
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }

  function start() {
    var boxes = document.querySelectorAll("[data-estimate]");
    for (var i = 0; i < boxes.length; i++) init(boxes[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
