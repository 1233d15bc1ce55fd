// Flash messages ("Batch queued", "2 failed documents queued again") say what just happened: a
// dismiss button takes one away, and good news goes by itself after a while, so it is not still
// on the page when the batch it spoke of has long moved on. Errors and warnings stay until
// dismissed. Without JavaScript the messages stay until the next page, as Django shows them once.
(function () {
  "use strict";
  var STALE_AFTER_MS = 10000;

  function dismiss(message) {
    var box = message.parentNode;
    message.remove();
    if (box && !box.querySelector(".message")) box.remove();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss]");
    if (button) dismiss(button.closest(".message"));
  });

  function start() {
    var stale = document.querySelectorAll("[data-messages] .message-success, [data-messages] .message-info");
    if (!stale.length) return;
    window.setTimeout(function () {
      for (var i = 0; i < stale.length; i++) {
        // Leave a message alone while the person is reading it with the pointer or keyboard.
        if (stale[i].matches(":hover") || stale[i].contains(document.activeElement)) continue;
        dismiss(stale[i]);
      }
    }, STALE_AFTER_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
