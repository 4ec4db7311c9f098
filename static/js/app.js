// Our own script: small progressive enhancements on top of htmx. Every page works without it.
(function () {
  "use strict";

  // A fragment that contains <dialog data-open> is shown as a modal once swapped in.
  function openDialogs(root) {
    root.querySelectorAll("dialog[data-open]").forEach(function (dialog) {
      if (!dialog.open && typeof dialog.showModal === "function") {
        dialog.showModal();
      }
    });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    openDialogs(event.detail.elt || document);
  });

  // Buttons with data-close-dialog close the dialog they are in.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (button) {
      var dialog = button.closest("dialog");
      if (dialog) {
        event.preventDefault();
        dialog.close();
        if (dialog.hasAttribute("data-remove-on-close")) {
          dialog.remove();
        }
      }
    }
  });

  // Print buttons (certificates).
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) {
      event.preventDefault();
      window.print();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    openDialogs(document);
  });
})();
