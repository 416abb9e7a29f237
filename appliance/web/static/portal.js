// Strongroom portal: drag and drop and upload progress. Everything else works
// without this file; the upload form also works without it (a plain POST).
"use strict";
(function () {
  var form = document.getElementById("upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var input = form.querySelector("input[type=file]");
  var drop = form.querySelector(".drop");
  var bar = form.querySelector("progress");
  var text = form.querySelector(".progress-text");
  var token = form.querySelector("input[name=csrf]").value;

  function send(files) {
    if (!files || !files.length) { return; }
    var data = new FormData();
    data.append("csrf", token);
    for (var i = 0; i < files.length; i++) { data.append("file", files[i], files[i].name); }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", token);
    bar.hidden = false; bar.value = 0;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        text.textContent = bar.value + " %";
      }
    };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) { window.location.reload(); return; }
      var message = xhr.statusText;
      try { message = JSON.parse(xhr.responseText).error || message; } catch (e) { /* not JSON */ }
      text.textContent = message;
      bar.hidden = true;
    };
    xhr.onerror = function () { text.textContent = form.dataset.failed || "Upload failed"; bar.hidden = true; };
    xhr.send(data);
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); send(input.files); });
  drop.hidden = false;
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    document.addEventListener(name, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  document.addEventListener("drop", function (e) { send(e.dataTransfer && e.dataTransfer.files); });
}());
