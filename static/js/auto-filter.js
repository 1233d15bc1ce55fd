// The dashboard's status filter applies as soon as a status is chosen: a form marked
// data-auto-filter is submitted when one of its [data-auto-submit] fields changes (the search
// box keeps its button and Enter). A file, not an onchange= attribute: the Content-Security-Policy
// refuses inline handlers. Without JavaScript the Search button applies the filter too.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (!field.matches || !field.matches("[data-auto-filter] [data-auto-submit]")) return;
  const form = field.form;
  if (form.requestSubmit) {
    form.requestSubmit();
  } else {
    form.submit();
  }
});
