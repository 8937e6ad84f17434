/* Behaviour every page shares, kept out of the markup: the Content-Security-Policy
 * (portal/settings.py) allows no inline script and no on* attributes.
 *
 * data-confirm="question" on a form: asks before the form is sent; "Cancel"
 * sends nothing. The listener is on the document in the capture phase, so it
 * also covers forms added later (the run page's step actions, htmx swaps) and
 * runs before any handler on the form itself.
 */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
