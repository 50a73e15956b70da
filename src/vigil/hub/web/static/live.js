// Live view: the device's annotated MJPEG stream, or a clear note when it sends no frames.
"use strict";

(() => {
  const { api } = vigil;
  const CHECK_MS = 2000;
  const deviceId = vigil.page().deviceId;
  const image = document.getElementById("stream");
  const notice = document.getElementById("nostream");
  const statusText = document.getElementById("device-status");

  function showStream() {
    if (document.body.dataset.stream === "live") {
      return;
    }
    // A fresh URL opens a new connection, so the first frame is the newest one.
    image.src = "/api/streams/" + encodeURIComponent(deviceId) + "/mjpeg?opened=" + Date.now();
    image.classList.remove("hidden");
    notice.classList.add("hidden");
    document.body.dataset.stream = "live";
  }

  function showNoStream(text) {
    notice.textContent = text;
    notice.classList.remove("hidden");
    if (document.body.dataset.stream !== "none") {
      image.removeAttribute("src");
      image.classList.add("hidden");
      document.body.dataset.stream = "none";
    }
  }

  async function check() {
    try {
      const device = await api("/api/devices/" + encodeURIComponent(deviceId));
      const seen = vigil.formatRelative(device.last_seen);
      statusText.textContent = device.status + ", last seen " + seen;
      if (device.streaming) {
        showStream();
      } else {
        showNoStream("No live stream: this device is not sending frames right now.");
      }
    } catch (error) {
      const text = error.status === 404 ? "No device with this id has reported to the hub."
        : "Cannot reach the hub: " + error.message;
      statusText.textContent = "unknown";
      showNoStream(text);
    }
  }

  image.addEventListener("error", () => {
    showNoStream("The live stream stopped; waiting for frames.");
  });

  check();
  setInterval(check, CHECK_MS);
})();
