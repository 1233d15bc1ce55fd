// Copy buttons for the secrets the settings page shows once (a new API key, a new webhook's
// signing secret): a button marked data-copy copies the text of the <code> beside it (in the same
// .copyable).
// The buttons are hidden in the HTML and shown here, so a page without JavaScript offers none
// that cannot work. A file, not an onclick= attribute: the Content-Security-Policy refuses
// inline handlers.
(function () {
  "use strict";
  var RESET_AFTER_MS = 2000;

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var done = document.execCommand("copy");
    area.remove();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var source = button.closest(".copyable").querySelector("code");
    if (!source) return;
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    copy(source.textContent.trim()).then(
      function () { button.textContent = "Copied"; },
      function () { button.textContent = "Select and copy it by hand"; }
    );
    window.setTimeout(function () { button.textContent = label; }, RESET_AFTER_MS);
  });

  function start() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
