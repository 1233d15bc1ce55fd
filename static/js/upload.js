/* Sheaf batch upload: drag-and-drop plus an editable list of chosen files.
   Keeps every chosen file in a DataTransfer and writes it back to the real
   <input type="file" multiple>, so the ordinary form submit sends them all.
   Without JavaScript (or DataTransfer) the plain multiple file input still works. */
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

  function init(zone) {
    var input = zone.querySelector('input[type="file"]');
    var list = document.querySelector("[data-file-list]");
    if (!input || !input.multiple || !list) return;

    // Files the browser kept (e.g. back/forward cache) start the list.
    var kept = Array.prototype.slice.call(input.files || []);
    var transfer;
    try {
      transfer = new DataTransfer();
      for (var k = 0; k < kept.length; k++) transfer.items.add(kept[k]);
      input.files = transfer.files; // throws where unsupported
    } catch (err) {
      return; // leave the plain input alone
    }

    var items = list.querySelector("[data-files]");
    var count = list.querySelector("[data-file-count]");
    var maxFiles = parseInt(zone.getAttribute("data-max-files"), 10) || 0;
    var maxSize = parseInt(zone.getAttribute("data-max-size"), 10) || 0;
    if (!input.accept) input.accept = ".pdf,.csv,.xlsx,.txt,.png,.jpg,.jpeg,.tif,.tiff";

    function sync() {
      input.files = transfer.files;
      render();
    }

    function add(files) {
      var seen = {};
      for (var i = 0; i < transfer.files.length; i++) seen[fileKey(transfer.files[i])] = true;
      for (var j = 0; j < files.length; j++) {
        var key = fileKey(files[j]);
        if (!seen[key]) {
          transfer.items.add(files[j]);
          seen[key] = true;
        }
      }
      sync();
    }

    function remove(index) {
      var next = new DataTransfer();
      for (var i = 0; i < transfer.files.length; i++) {
        if (i !== index) next.items.add(transfer.files[i]);
      }
      transfer = next;
      sync();
      input.focus();
    }

    function render() {
      var files = transfer.files;
      items.textContent = "";
      for (var i = 0; i < files.length; i++) {
        var li = document.createElement("li");
        var name = document.createElement("span");
        name.className = "file-name";
        name.textContent = files[i].name;
        var size = document.createElement("span");
        size.className = "file-size";
        size.textContent = humanSize(files[i].size);
        li.appendChild(name);
        li.appendChild(size);
        if (maxSize && files[i].size > maxSize) {
          li.className = "file-over";
          var warn = document.createElement("span");
          warn.className = "file-warn";
          warn.textContent = "too large";
          li.appendChild(warn);
        }
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn-small btn-secondary";
        button.textContent = "Remove";
        button.setAttribute("aria-label", "Remove " + files[i].name);
        button.addEventListener("click", remove.bind(null, i));
        li.appendChild(button);
        items.appendChild(li);
      }
      var n = files.length;
      count.textContent = n + " of " + maxFiles + " files" +
        (maxFiles && n > maxFiles ? " (" + (n - maxFiles) + " too many)" : "");
      count.classList.toggle("file-count-over", maxFiles > 0 && n > maxFiles);
      list.hidden = n === 0;
    }

    // The picker replaces input.files with its new choice: fold it into the kept list.
    input.addEventListener("change", function () {
      add(input.files);
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

    render();
  }

  function start() {
    var zones = document.querySelectorAll("[data-dropzone]");
    for (var i = 0; i < zones.length; i++) init(zones[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
