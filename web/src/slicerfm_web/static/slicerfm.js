// SlicerFM web page helpers: uploads with progress, keyboard shortcuts.
(function () {
  "use strict";

  function report(text) {
    if (window.trame) window.trame.trigger("client_error", [text]);
  }

  function upload(input) {
    const file = input.files && input.files[0];
    if (!file) return;
    const request = new XMLHttpRequest();
    request.open("POST", "upload?name=" + encodeURIComponent(file.name));
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        window.trame.state.set("upload_percent", Math.round((100 * event.loaded) / event.total));
      }
    };
    request.onload = () => {
      window.trame.state.set("upload_percent", null);
      input.value = "";
      if (request.status < 400) return;
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (e) { body = {}; }
      if (!body.reported) {
        report(body.error || ("the upload failed: " + request.status + " " + request.statusText));
      }
    };
    request.onerror = () => {
      window.trame.state.set("upload_percent", null);
      input.value = "";
      report("the upload of '" + file.name + "' was interrupted: check the connection and send it again");
    };
    window.trame.state.set("upload_percent", 0);
    request.send(file);
  }

  const SHORTCUTS = { p: ["set_tool", ["positive"]], n: ["set_tool", ["negative"]],
                      b: ["set_tool", ["box"]], z: ["undo", []], y: ["redo", []] };

  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || !window.trame) return;
    const tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (event.key === "Escape") return;
    const action = SHORTCUTS[event.key.toLowerCase()];
    if (!action) return;
    event.preventDefault();
    window.trame.trigger(action[0], action[1]);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && window.trame) window.trame.trigger("set_tool", [""]);
  });

  // Tell the tab when this page is connected, so that it sends fresh view images.
  const opened = setInterval(() => {
    if (window.trame && window.trame.state && window.trame.state.get("connected") !== undefined) {
      clearInterval(opened);
      window.trame.trigger("page_opened", []);
    }
  }, 200);

  window.slicerfm = { upload };
})();
