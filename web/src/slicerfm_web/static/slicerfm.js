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

  // Point clicks in slice views: one message to the tab instead of trame-rca's mouse events
  // one round trip at a time (tab/clicks.py). While the positive or negative point tool is
  // active, a plain left press and release in a slice view are kept from trame-rca (its
  // vtk.js interactor listens on the view's element; these listeners run first, in the
  // capture phase of the document) and the release sends the click's position in the view's
  // element: CSS px, x from the left edge, y up from the bottom edge (trame-rca's
  // convention), with the element's size. Moves, other buttons, the wheel, modified clicks
  // and every other tool go to trame-rca as before. window.slicerfm.directClicks = false
  // sends point clicks through trame-rca too (the tests compare both paths).
  const POINT_TOOLS = { positive: true, negative: true };
  let pressed = null;   // {pointerId, view} of a press kept from trame-rca

  function sliceViewAt(event) {
    const geometry = window.trame && window.trame.state.get("view_geometry");
    if (!geometry) return null;
    for (const marker of document.querySelectorAll("[data-view]")) {
      const name = marker.getAttribute("data-view");
      if (!geometry[name]) continue;             // not a slice view
      const area = marker.parentElement.querySelector(".remote-controlled-area");
      if (area && area.contains(event.target)) return { name, area };
    }
    return null;
  }

  function plainLeftClick(event) {
    return event.button === 0 && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey;
  }

  document.addEventListener("pointerdown", (event) => {
    pressed = null;
    if (!window.trame || !window.slicerfm.directClicks || !plainLeftClick(event)) return;
    if (!POINT_TOOLS[window.trame.state.get("active_tool")]) return;
    const view = sliceViewAt(event);
    if (!view) return;
    event.stopPropagation();
    event.preventDefault();
    pressed = { pointerId: event.pointerId, view };
  }, true);

  document.addEventListener("pointerup", (event) => {
    if (!pressed || event.pointerId !== pressed.pointerId || event.button !== 0) return;
    const view = pressed.view;
    pressed = null;
    event.stopPropagation();
    event.preventDefault();
    const box = view.area.getBoundingClientRect();
    const x = Math.min(Math.max(event.clientX - box.left, 0), box.width);
    const y = Math.min(Math.max(box.bottom - event.clientY, 0), box.height);
    window.trame.trigger("click_view", [view.name, x, y, box.width, box.height]);
  }, true);

  // Tell the tab when this page is connected, so that it sends fresh view images.
  const opened = setInterval(() => {
    if (window.trame && window.trame.state && window.trame.state.get("connected") !== undefined) {
      clearInterval(opened);
      window.trame.trigger("page_opened", []);
    }
  }, 200);

  window.slicerfm = { upload, directClicks: true };
})();
