// The document page: selecting a value (click, or j/k) outlines where its quote stands on the
// page and scrolls there; c confirms the selected value, e edits it, [ and ] go to the previous
// and next document. A file, not inline code: the Content-Security-Policy refuses inline scripts.
(() => {
  const values = Array.from(document.querySelectorAll("li.value"));
  if (!values.length) return;
  let current = -1;

  function select(position) {
    if (position < 0 || position >= values.length) return;
    current = position;
    const item = values[position];
    const index = item.dataset.value;
    values.forEach((other) => other.classList.toggle("active", other === item));
    document.querySelectorAll(".quote.active").forEach((mark) => mark.classList.remove("active"));
    const marks = document.querySelectorAll(`.quote[data-value="${index}"]`);
    marks.forEach((mark) => mark.classList.add("active"));
    const target = marks[0] || (item.dataset.page && document.getElementById(`page-${item.dataset.page}`));
    if (target) target.scrollIntoView({ block: "center", behavior: "smooth" });
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
  }

  values.forEach((item, position) => {
    item.addEventListener("click", (event) => {
      if (!event.target.closest("form")) select(position);
    });
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(Math.max(current - 1, 0));
    else if (event.key === "c" && current >= 0) {
      const confirm = values[current].querySelector("button[data-confirm-value]");
      if (confirm) confirm.click();
    } else if (event.key === "e" && current >= 0) {
      const field = values[current].querySelector("[data-edit]");
      if (field) {
        event.preventDefault();
        field.focus();
      }
    } else {
      const target = document.querySelector(
        `a[data-key="${event.key}"], button[data-key-submit="${event.key}"]`,
      );
      if (target) target.click();
      else return;
    }
    event.preventDefault();
  });

  const hash = window.location.hash.match(/^#v-(\d+)$/);
  select(hash ? values.findIndex((item) => item.dataset.value === hash[1]) : 0);
})();
