/* Sheaf batch upload: drag-and-drop, and every chosen file sent on its own as soon as it is
   chosen, into an upload draft on the server (batches/drafts.py), with its progress.

   The server checks each file as it checks an upload (type by content, empty, size); a refused
   file is listed with its reason and can be removed, and the others stay chosen. Type, size and
   the plan's count are checked here first, so a file that cannot fit is not sent at all. Submit
   is disabled while a file is refused, over a limit, or still on its way; the form then sends
   the draft's id (the hidden `draft` input) instead of the files, and a refused submission
   comes back with the draft's files listed again. Without JavaScript the plain multiple file
   input sends every file with the form, as before. */
(function () {
  "use strict";

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    var units = ["KB", "MB", "GB"];
    var value = bytes;
    var unit = "B";
    for (var i = 0; i < units.length && value >= 1024; i++) {
      value /= 1024;
      unit = units[i];
    }
    return (value < 10 ? value.toFixed(1) : Math.round(value)) + " " + unit;
  }

  function fileKey(file) {
    return file.name + "\u0000" + file.size + "\u0000" + file.lastModified;
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (err) {
      return null;
    }
  }

  // What is wrong with a file before it is sent: its type (by extension), empty, too large.
  function fileProblem(file, extensions, maxSize) {
    var dot = file.name.lastIndexOf(".");
    var ext = dot > 0 ? file.name.slice(dot).toLowerCase() : "";
    if (extensions.length && extensions.indexOf(ext) === -1) {
      return (ext ? ext + " files are" : "Files without an extension are") + " not supported.";
    }
    if (file.size === 0) return "It is empty.";
    if (maxSize && file.size > maxSize) {
      return "It is " + humanSize(file.size) + "; your plan allows files up to " +
        humanSize(maxSize) + ".";
    }
    return "";
  }

  // The one-file form (Free): the same checks before sending. The picker is marked invalid with
  // the reason, so the browser itself holds the submit back and says why.
  function initSingle(input) {
    var extensions = (input.accept || "").toLowerCase().split(",").filter(Boolean);
    var maxSize = parseInt(input.getAttribute("data-max-size"), 10) || 0;
    var note = document.getElementById(input.getAttribute("data-problem"));
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var problem = file ? fileProblem(file, extensions, maxSize) : "";
      var message = problem ? file.name + ": " + problem : "";
      input.setCustomValidity(message);
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      if (note) {
        note.textContent = message;
        note.hidden = !message;
      }
    });
  }

  function init(zone) {
    var input = zone.querySelector('input[type="file"]');
    var list = document.querySelector("[data-file-list]");
    var url = zone.getAttribute("data-draft-url");
    var form = zone.closest("form");
    if (!input || !input.multiple || !list || !url || !form) return;
    var draftInput = form.querySelector('input[name="draft"]');
    var tokenInput = form.querySelector('input[name="csrfmiddlewaretoken"]');
    if (!draftInput || !tokenInput || !window.FormData || !window.XMLHttpRequest) return;

    var submit = form.querySelector('button[type="submit"]');
    var items = list.querySelector("[data-files]");
    var count = list.querySelector("[data-file-count]");
    var blocked = list.querySelector("[data-file-blocked]");
    var maxFiles = parseInt(zone.getAttribute("data-max-files"), 10) || 0;
    var maxSize = parseInt(zone.getAttribute("data-max-size"), 10) || 0;
    var extensions = (input.accept || "").toLowerCase().split(",").filter(Boolean);
    // Each entry: {name, size, key, file?, id?, status, message, progress, removing, xhr}
    // status: waiting | uploading | ready | refused | over
    var entries = [];
    var sending = null;

    // Files a refused submission kept in the draft are listed by the server.
    var kept = items.querySelectorAll("[data-draft-file]");
    for (var k = 0; k < kept.length; k++) {
      var id = kept[k].getAttribute("data-draft-file");
      entries.push({
        name: kept[k].getAttribute("data-name"),
        size: parseInt(kept[k].getAttribute("data-size"), 10) || 0,
        key: "kept\u0000" + id,
        id: id,
        status: "ready",
        message: "",
        progress: 100,
      });
    }

    function localProblem(file) {
      return fileProblem(file, extensions, maxSize);
    }

    // Files past the plan's count wait, marked, until others are removed: they are not sent.
    function arrange() {
      var n = 0;
      for (var i = 0; i < entries.length; i++) {
        var entry = entries[i];
        if (entry.status === "refused") continue;
        n++;
        if (maxFiles && n > maxFiles) {
          if (entry.status === "waiting") entry.status = "over";
        } else if (entry.status === "over") {
          entry.status = "waiting";
        }
      }
    }

    function add(files) {
      var seen = {};
      for (var i = 0; i < entries.length; i++) seen[entries[i].key] = true;
      for (var j = 0; j < files.length; j++) {
        var key = fileKey(files[j]);
        if (seen[key]) continue;
        seen[key] = true;
        var problem = localProblem(files[j]);
        entries.push({
          name: files[j].name,
          size: files[j].size,
          key: key,
          file: files[j],
          status: problem ? "refused" : "waiting",
          message: problem,
          progress: 0,
        });
      }
      arrange();
      pump();
      render();
    }

    function request(method, target) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, target);
      xhr.setRequestHeader("X-CSRFToken", tokenInput.value);
      xhr.setRequestHeader("Accept", "application/json");
      return xhr;
    }

    // One file at a time, in the order chosen: the batch keeps that order.
    function pump() {
      if (sending) return;
      var entry = null;
      for (var i = 0; i < entries.length && !entry; i++) {
        if (entries[i].status === "waiting") entry = entries[i];
      }
      if (!entry) return;
      sending = entry;
      entry.status = "uploading";
      entry.progress = 0;
      var data = new FormData();
      data.append("file", entry.file, entry.name);
      if (draftInput.value) data.append("draft", draftInput.value);
      var xhr = request("POST", url);
      entry.xhr = xhr;
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        entry.progress = Math.round((100 * event.loaded) / event.total);
        render();
      });
      xhr.addEventListener("load", function () {
        var body = parseJson(xhr.responseText);
        if (xhr.status === 201 && body && body.file) {
          entry.status = "ready";
          entry.id = body.file.id;
          entry.progress = 100;
          draftInput.value = body.draft;
        } else if (body && body.code === "not_found" && draftInput.value) {
          // The draft expired: what it held is gone too, and the next file starts a new one.
          draftInput.value = "";
          for (var i = 0; i < entries.length; i++) {
            if (entries[i] === entry || entries[i].status === "ready") {
              entries[i].status = "refused";
              entries[i].message = body.detail;
            }
          }
        } else {
          entry.status = "refused";
          entry.message = body && body.detail ? body.detail :
            "The server did not take this file (HTTP " + xhr.status + "); remove it and try again.";
        }
        finished(entry);
      });
      xhr.addEventListener("error", function () {
        entry.status = "refused";
        entry.message = "The upload failed (no connection); remove the file and choose it again.";
        finished(entry);
      });
      xhr.send(data);
    }

    function finished(entry) {
      entry.xhr = null;
      sending = null;
      if (entry.removing) forget(entry);
      arrange();
      pump();
      render();
    }

    // A file already in the draft leaves it first; it stays listed ("removing") until it has.
    function forget(entry) {
      if (entry.status !== "ready" || !entry.id) {
        drop(entry);
        return;
      }
      var xhr = request("DELETE", url + entry.id + "/");
      xhr.addEventListener("load", function () {
        if (xhr.status === 204 || xhr.status === 404) {
          drop(entry);
        } else {
          entry.removing = false;
          entry.message = "Could not be removed (HTTP " + xhr.status + "); try again.";
        }
        render();
      });
      xhr.addEventListener("error", function () {
        entry.removing = false;
        entry.message = "Could not be removed (no connection); try again.";
        render();
      });
      xhr.send();
    }

    function drop(entry) {
      var index = entries.indexOf(entry);
      if (index !== -1) entries.splice(index, 1);
      arrange();
      pump();
      render();
    }

    function remove(entry) {
      entry.removing = true;
      entry.message = "";
      // A file on its way is removed once the server has answered for it.
      if (!entry.xhr) forget(entry);
      render();
      input.focus();
    }

    function tally() {
      var t = { live: 0, over: 0, refused: 0, busy: 0 };
      for (var i = 0; i < entries.length; i++) {
        var entry = entries[i];
        if (entry.status === "refused") t.refused++;
        else t.live++;
        if (entry.status === "over") t.over++;
        if (entry.removing || entry.status === "waiting" || entry.status === "uploading") t.busy++;
      }
      return t;
    }

    function blockReason(t) {
      if (t.refused) {
        return "Remove the " + plural(t.refused, "refused file") + " to start the batch.";
      }
      if (t.over) {
        return "Your plan takes " + plural(maxFiles, "file") + " per batch: remove " +
          plural(t.over, "file") + " to start it.";
      }
      if (t.busy) return "Uploading… the batch can start once every file is in.";
      return "";
    }

    function statusOf(entry) {
      var status = element("span", "file-status");
      if (entry.removing) {
        status.textContent = "removing…";
      } else if (entry.status === "uploading") {
        var bar = element("progress");
        bar.max = 100;
        bar.value = entry.progress;
        bar.setAttribute("aria-label", "Uploading " + entry.name);
        status.appendChild(bar);
        status.appendChild(document.createTextNode(" " + entry.progress + "%"));
      } else if (entry.status === "waiting") {
        status.textContent = "waiting";
      } else if (entry.status === "over") {
        status.textContent = "one too many for your plan";
      } else if (entry.status === "refused") {
        status.className += " file-warn";
        status.textContent = "refused: " + entry.message;
      } else {
        status.textContent = entry.message || "ready";
      }
      return status;
    }

    function render() {
      items.textContent = "";
      for (var i = 0; i < entries.length; i++) {
        var entry = entries[i];
        var li = element("li", "file-" + entry.status);
        if (entry.status === "over" || entry.status === "refused") li.className += " file-over";
        li.appendChild(element("span", "file-name", entry.name));
        li.appendChild(element("span", "file-size", humanSize(entry.size)));
        li.appendChild(statusOf(entry));
        var button = element("button", "btn-small btn-secondary", "Remove");
        button.type = "button";
        button.disabled = !!entry.removing;
        button.setAttribute("aria-label", "Remove " + entry.name);
        button.addEventListener("click", remove.bind(null, entry));
        li.appendChild(button);
        items.appendChild(li);
      }
      var t = tally();
      count.textContent = t.live + " of " + maxFiles + " files" +
        (t.over ? " (" + t.over + " too many)" : "");
      count.classList.toggle("file-count-over", t.over > 0);
      list.hidden = entries.length === 0;
      var reason = blockReason(t);
      blocked.textContent = reason;
      blocked.hidden = !reason;
      if (submit) submit.disabled = !!reason;
      form.dispatchEvent(new CustomEvent("sheaf:files"));
    }

    // The files the batch will be made of, for the estimate (estimate.js): {name, size, file?}
    // (a file kept in the draft from a refused submission has no File here).
    form.sheafListedFiles = function () {
      return entries
        .filter(function (entry) {
          return entry.status !== "refused" && entry.status !== "over" && !entry.removing;
        })
        .map(function (entry) { return { name: entry.name, size: entry.size, file: entry.file }; });
    };

    // The files chosen here and not refused, for "Try on one document" (fields-editor.js).
    form.sheafChosenFiles = function () {
      return entries
        .filter(function (entry) { return entry.file && entry.status !== "refused" && !entry.removing; })
        .map(function (entry) { return entry.file; });
    };

    // Chosen files go to the draft; the input itself is emptied so the form never sends them.
    input.addEventListener("change", function () {
      add(input.files);
      input.value = "";
    });

    form.addEventListener("submit", function (event) {
      if (blockReason(tally())) {
        event.preventDefault();
        render();
        return;
      }
      input.disabled = true;
    });
    // Coming back to the page (back/forward cache) must find the picker usable.
    window.addEventListener("pageshow", function () {
      input.disabled = false;
    });

    function hasFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }

    var depth = 0;
    zone.addEventListener("dragenter", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth++;
      zone.classList.add("dropzone-active");
    });
    zone.addEventListener("dragover", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove("dropzone-active");
    });
    zone.addEventListener("drop", function (event) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      zone.classList.remove("dropzone-active");
      add(event.dataTransfer.files);
    });

    // A file dropped next to the zone should not navigate away and lose the form.
    document.addEventListener("dragover", function (event) {
      if (hasFiles(event)) event.preventDefault();
    });
    document.addEventListener("drop", function (event) {
      if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault();
    });

    // Files the browser kept in the picker (back/forward cache) are sent like new ones.
    if (input.files && input.files.length) {
      add(input.files);
      input.value = "";
    }
    render();
  }

  function start() {
    var zones = document.querySelectorAll("[data-dropzone]");
    for (var i = 0; i < zones.length; i++) init(zones[i]);
    var singles = document.querySelectorAll("input[data-single-file]");
    for (var j = 0; j < singles.length; j++) initSingle(singles[j]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
