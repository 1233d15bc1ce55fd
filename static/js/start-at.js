/* Sheaf upload form: the start time's zone is the browser's, unless the user chose another.
   The form renders `data-browser-zone` on the zone select only when it is shown fresh, so a
   form that comes back with errors keeps the zone that was sent. Without JavaScript the select
   keeps UTC and the user may pick the zone. */
(function () {
  "use strict";

  function start() {
    var select = document.querySelector("select[data-browser-zone]");
    if (!select || typeof Intl === "undefined") return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) {
        select.value = zone;
        return;
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
