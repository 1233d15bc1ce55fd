/* Sheaf upload page, "What to extract".

   The field editor: rows of name, type, description and required (a table field gets rows of
   columns) that write the plain `fields` textarea in the syntax the API takes, and are rebuilt
   from it when it is edited by hand. The textarea stays the form's field (under "As text"), so the
   form posts exactly what it posts without JavaScript. Every change is checked by the server's own
   parser (POST fields/check/), and all of its problems are listed beside the rows.

   Also: a template link fills the prompt and fields in place (without JavaScript it reloads the
   page with them), and "Try on one document" sends the prompt, the fields and one chosen file to
   be extracted now, showing the values when they are ready (htmx polls the answer). */
(function () {
  "use strict";

  var TYPES = ["string", "number", "date", "boolean", "list", "table"];
  var SCALAR_TYPES = ["string", "number", "date", "boolean"];
  var CHECK_DELAY_MS = 350;
  var uid = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text) node.textContent = text;
    return node;
  }

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function post(form, url, data) {
    data.append("csrfmiddlewaretoken", csrfToken(form));
    return fetch(url, { method: "POST", body: data, credentials: "same-origin" });
  }

  /* A labelled control: <div><label for=id>text</label><control id=id></div>. */
  function labelled(text, control, className) {
    var id = "fe-" + ++uid;
    control.id = id;
    var wrap = el("div", className ? { class: className } : {});
    var label = el("label", { for: id }, text);
    if (control.type === "checkbox") {
      wrap.appendChild(control);
      wrap.appendChild(label);
    } else {
      wrap.appendChild(label);
      wrap.appendChild(control);
    }
    return wrap;
  }

  function typeSelect(types, value) {
    var select = el("select", { "data-part": "type" });
    types.forEach(function (type) {
      var option = el("option", { value: type }, type);
      if (type === (value || "string")) option.selected = true;
      select.appendChild(option);
    });
    return select;
  }

  function textInput(part, value) {
    var input = el("input", { type: "text", "data-part": part });
    input.value = value || "";
    return input;
  }

  function part(row, name) {
    return row.querySelector(":scope > .field-row-main [data-part='" + name + "']");
  }

  function initEditor(root) {
    var textarea = root.querySelector("textarea");
    if (!textarea || !window.fetch || !window.FormData) return;
    var form = textarea.form;
    var url = root.getAttribute("data-check-url");
    var field = textarea.closest(".field");

    var editor = el("div", { class: "fields-editor", "data-editor": "" });
    editor.appendChild(el("p", { class: "label" }, "Fields"));
    var rows = el("ol", { class: "fields-rows", "aria-label": "Field rows" });
    var addField = el("button", { type: "button", class: "btn-secondary btn-small" }, "Add field");
    var problems = el("div", {
      class: "fields-problems", role: "status", "aria-live": "polite", "data-fields-problems": ""
    });
    editor.appendChild(rows);
    editor.appendChild(addField);
    editor.appendChild(problems);
    var details = el("details", { class: "fields-text" });
    details.appendChild(el("summary", {}, "As text"));
    root.insertBefore(editor, field);
    details.appendChild(field);
    root.appendChild(details);
    if (field.classList.contains("field-invalid")) details.open = true;

    function columnRow(fieldNumber, spec) {
      var li = el("li", { class: "column-row", "data-column-row": "" });
      var name = textInput("name", spec.name);
      li.appendChild(labelled("Column name", name));
      li.appendChild(labelled("Column type", typeSelect(SCALAR_TYPES, spec.type)));
      li.appendChild(labelled("Column description", textInput("description", spec.description)));
      var remove = el("button", { type: "button", class: "btn-small btn-secondary" }, "Remove");
      remove.setAttribute("aria-label", "Remove this column of field " + fieldNumber);
      remove.addEventListener("click", function () {
        var table = li.parentNode;
        li.remove();
        changed();
        var add = table.parentNode.querySelector("[data-add-column]");
        if (add) add.focus();
      });
      li.appendChild(remove);
      return li;
    }

    function fieldRow(spec) {
      var number = rows.children.length + 1;
      var li = el("li", { class: "field-row", "data-field-row": "" });
      var main = el("div", { class: "field-row-main" });
      var name = textInput("name", spec.name);
      var type = typeSelect(TYPES, spec.type);
      var required = el("input", { type: "checkbox", "data-part": "required" });
      required.checked = !!spec.required;
      main.appendChild(labelled("Field name", name));
      main.appendChild(labelled("Type", type));
      main.appendChild(labelled("Description", textInput("description", spec.description)));
      main.appendChild(labelled("Required", required, "check"));
      var remove = el("button", { type: "button", class: "btn-small btn-secondary" }, "Remove");
      remove.setAttribute("aria-label", "Remove field " + number);
      remove.addEventListener("click", function () {
        li.remove();
        changed();
        addField.focus();
      });
      main.appendChild(remove);
      li.appendChild(main);

      var table = el("div", { class: "table-columns" });
      var columns = el("ol", { class: "column-rows", "aria-label": "Columns of field " + number });
      var addColumn = el("button", {
        type: "button", class: "btn-small btn-secondary", "data-add-column": ""
      }, "Add column");
      addColumn.addEventListener("click", function () {
        var row = columnRow(number, {});
        columns.appendChild(row);
        row.querySelector("input").focus();
        changed();
      });
      (spec.columns || []).forEach(function (column) {
        columns.appendChild(columnRow(number, column));
      });
      table.appendChild(columns);
      table.appendChild(addColumn);
      table.hidden = type.value !== "table";
      type.addEventListener("change", function () {
        table.hidden = type.value !== "table";
        if (!table.hidden && !columns.children.length) columns.appendChild(columnRow(number, {}));
      });
      li.appendChild(table);
      return li;
    }

    function columnText(row) {
      var name = row.querySelector("[data-part='name']").value.trim();
      var type = row.querySelector("[data-part='type']").value;
      var description = row.querySelector("[data-part='description']").value.trim();
      if (!name && !description) return "";
      var text = name + (type !== "string" ? ":" + type : "");
      return description ? text + " -- " + description : text;
    }

    /* The rows in the text syntax, as extraction.fields.fields_to_text writes it. */
    function rowsText() {
      var lines = [];
      Array.prototype.forEach.call(rows.children, function (row) {
        var name = part(row, "name").value.trim();
        var type = part(row, "type").value;
        var description = part(row, "description").value.trim();
        var required = part(row, "required").checked;
        if (!name && !description && type === "string" && !required) return;
        var line = name + (required ? "!" : "");
        if (type === "table") {
          var columns = Array.prototype.map.call(
            row.querySelectorAll("[data-column-row]"), columnText
          ).filter(Boolean);
          line += ": table(" + columns.join("; ") + ")";
        } else if (type !== "string") {
          line += ":" + type;
        }
        lines.push(description ? line + " -- " + description : line);
      });
      return lines.join("\n");
    }

    function build(fields) {
      rows.textContent = "";
      fields.forEach(function (spec) { rows.appendChild(fieldRow(spec)); });
    }

    function show(answer) {
      problems.textContent = "";
      textarea.removeAttribute("aria-invalid");
      if (!textarea.value.trim()) {
        problems.appendChild(el("p", { class: "muted" }, "No fields: they are inferred from the prompt."));
      } else if (answer.ok) {
        var count = answer.fields.length;
        problems.appendChild(el("p", { class: "fields-ok" },
          count + " field" + (count === 1 ? "" : "s") + ", no problems."));
      } else {
        textarea.setAttribute("aria-invalid", "true");
        var count2 = answer.problems.length;
        problems.appendChild(el("p", {},
          count2 === 1 ? "1 problem in the fields:" : count2 + " problems in the fields:"));
        var list = el("ul", { "data-problem-list": "" });
        answer.problems.forEach(function (message) { list.appendChild(el("li", {}, message)); });
        problems.appendChild(list);
      }
    }

    var timer = null;
    var sent = 0;
    /* Asks the server's parser; `rebuild` redraws the rows from the text when it parses (the
       text was edited by hand, or filled from a template). */
    function check(rebuild) {
      var mine = ++sent;
      var data = new FormData();
      data.append("fields", textarea.value);
      post(form, url, data)
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (answer) {
          if (mine !== sent) return;
          show(answer);
          if (rebuild && answer.ok) build(answer.fields);
          if (rebuild && !answer.ok) details.open = true;
        })
        .catch(function () {
          if (mine !== sent) return;
          problems.textContent = "The fields could not be checked just now; they are checked again when you submit.";
        });
    }

    function later(rebuild) {
      clearTimeout(timer);
      timer = setTimeout(function () { check(rebuild); }, CHECK_DELAY_MS);
    }

    function changed() {
      textarea.value = rowsText();
      later(false);
    }

    // Enter in a row's text box would submit the whole batch: a half-typed field list is not
    // what anyone means to send.
    rows.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") event.preventDefault();
    });
    rows.addEventListener("input", changed);
    rows.addEventListener("change", changed);
    textarea.addEventListener("input", function () { later(true); });
    addField.addEventListener("click", function () {
      var row = fieldRow({});
      rows.appendChild(row);
      row.querySelector("input").focus();
    });

    /* A template fills the prompt and the fields here, keeping the files already chosen. */
    document.querySelectorAll("a[data-template]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        if (form.elements.prompt) form.elements.prompt.value = link.getAttribute("data-prompt");
        textarea.value = link.getAttribute("data-fields");
        clearTimeout(timer);
        check(true);
      });
    });

    if (textarea.value.trim()) {
      check(true);
    } else {
      show({ ok: true, fields: [] });
    }
  }

  function initTrial(box) {
    var form = box.closest("form");
    var input = form && form.querySelector('input[type="file"][name="files"]');
    if (!input || !window.fetch || !window.FormData) return;
    var select = box.querySelector("[data-trial-file]");
    var run = box.querySelector("[data-trial-run]");
    var result = box.querySelector("[data-trial-result]");
    var url = box.getAttribute("data-url");
    box.hidden = false;

    /* The files chosen on this page: upload.js sends them to a draft and empties the picker,
       so it is asked first; the picker itself without it. */
    function chosen() {
      return form.sheafChosenFiles ? form.sheafChosenFiles() : Array.prototype.slice.call(input.files || []);
    }

    /* The chosen files as options, keeping the one selected (upload.js may change the list
       without a change event: a drop, a removal). */
    function refresh() {
      var files = chosen();
      var keep = select.selectedIndex >= 0 && select.options[select.selectedIndex]
        ? select.options[select.selectedIndex].textContent : "";
      select.textContent = "";
      if (!files.length) {
        select.appendChild(el("option", { value: "" }, "Choose files first"));
      }
      for (var i = 0; i < files.length; i++) {
        var option = el("option", { value: String(i) }, files[i].name);
        if (files[i].name === keep) option.selected = true;
        select.appendChild(option);
      }
      run.disabled = !files.length;
    }

    input.addEventListener("change", function () { setTimeout(refresh, 0); });
    select.addEventListener("focus", refresh);
    var list = document.querySelector("[data-files]");
    if (list && window.MutationObserver) {
      new MutationObserver(refresh).observe(list, { childList: true });
    }
    refresh();

    run.addEventListener("click", function () {
      refresh();
      var file = chosen()[parseInt(select.value, 10)];
      if (!file) return;
      var data = new FormData(form);
      data.delete("files");
      data.delete("draft");
      data.append("files", file, file.name);
      data.delete("csrfmiddlewaretoken");
      run.disabled = true;
      result.textContent = "Sending " + file.name + "…";
      post(form, url, data)
        .then(function (response) { return response.text(); })
        .then(function (html) {
          result.innerHTML = html;
          if (window.htmx) window.htmx.process(result);
        })
        .catch(function () {
          result.textContent = "The try could not be sent; check your connection and try again.";
        })
        .then(function () { run.disabled = false; });
    });
  }

  function start() {
    document.querySelectorAll("[data-fields-editor]").forEach(initEditor);
    document.querySelectorAll("[data-trial]").forEach(initTrial);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
