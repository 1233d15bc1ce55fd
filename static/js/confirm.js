// Asks before a form marked data-confirm="question" is submitted (e.g. deleting a batch).
// A file rather than an onsubmit= attribute: the Content-Security-Policy refuses inline handlers.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
