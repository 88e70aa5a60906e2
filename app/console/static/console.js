// Tracewire console: small enhancements; every page works without this script.
"use strict";
(function () {
  // Live "who will receive this": re-ask the server whenever the handling changes.
  var form = document.getElementById("alert-form");
  var target = document.getElementById("audience-preview");
  if (form && target) {
    var timer = null;
    var refresh = function () {
      var data = new FormData(form);
      fetch(form.getAttribute("data-preview"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" }
      }).then(function (answer) {
        return answer.ok ? answer.text() : null;
      }).then(function (html) {
        if (html !== null) {
          target.innerHTML = html;
        }
      }).catch(function () { /* keep the last preview */ });
    };
    form.addEventListener("change", function (event) {
      var name = event.target && event.target.name ? event.target.name : "";
      if (name.indexOf("handling.") === 0 || name === "details.addressed_to" || name === "country") {
        window.clearTimeout(timer);
        timer = window.setTimeout(refresh, 150);
      }
    });
  }
  // Move focus to an error summary so keyboard and screen-reader users hear it.
  var summary = document.getElementById("error-summary");
  if (summary && summary.focus) {
    summary.focus();
  }
})();
